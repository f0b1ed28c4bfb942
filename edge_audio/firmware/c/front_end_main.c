/* The C front end and network on the host: reads clips of int16 PCM from argv[1]; writes each clip's log-mels
 * (float32) to argv[2] and its scores to argv[3]. */
#include <stdio.h>

#include "front_end.h"
#include "network.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PCM FEATURES SCORES\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *features_out = fopen(argv[2], "wb"), *scores_out = fopen(argv[3], "wb");
    if (in == NULL || features_out == NULL || scores_out == NULL) {
        perror("edge-audio front end");
        return 2;
    }
    static int16_t pcm[EDGE_AUDIO_CLIP_SAMPLES];
    static float features[EDGE_AUDIO_N_MELS * EDGE_AUDIO_FRAMES];
    static edge_audio_value_t scores[EDGE_AUDIO_NETWORK_OUTPUT_ELEMENTS];
    while (fread(pcm, sizeof pcm, 1, in) == 1) {
        edge_audio_log_mel(pcm, features);
        edge_audio_classify(pcm, scores);
        if (fwrite(features, sizeof features, 1, features_out) != 1 || fwrite(scores, sizeof scores, 1, scores_out) != 1) {
            perror("edge-audio front end");
            return 2;
        }
    }
    return fclose(features_out) == 0 && fclose(scores_out) == 0 ? 0 : 2;
}
