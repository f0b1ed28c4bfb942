/* The generated network on the host: reads inputs (raw, one after another) from argv[1], writes the outputs to
 * argv[2]. Built with the system's C compiler to check the C against TensorFlow Lite Micro byte for byte. */
#include <stdio.h>
#include <stdlib.h>

#include "network.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUTS OUTPUTS\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        perror("edge-audio network");
        return 2;
    }
    static edge_audio_value_t input[EDGE_AUDIO_NETWORK_INPUT_ELEMENTS], output[EDGE_AUDIO_NETWORK_OUTPUT_ELEMENTS];
    while (fread(input, sizeof input, 1, in) == 1) {
        edge_audio_invoke(input, output);
        if (fwrite(output, sizeof output, 1, out) != 1) {
            perror("edge-audio network");
            return 2;
        }
    }
    return fclose(out) == 0 ? 0 : 2;
}
