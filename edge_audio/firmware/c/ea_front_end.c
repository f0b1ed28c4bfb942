/* The log-mel front end in C (no FFT library): the clip reflect-padded by N_FFT / 2 on both sides, framed every
 * HOP samples, windowed (periodic Hann), a radix-2 FFT, power, the mel filterbank over its non-zero bins,
 * log(mel + LOG_EPSILON), quantized with the network's input scale and zero point into its input ([mel][frame]).
 * float32 throughout: it follows the Python front end to float rounding, not bit for bit. */
#include <math.h>
#include <stdint.h>

#include "front_end.h"
#include "network.h"

#if (EDGE_AUDIO_N_FFT & (EDGE_AUDIO_N_FFT - 1)) != 0
#error "the C front end needs a power-of-two N_FFT"
#endif

static float ea_re[EDGE_AUDIO_N_FFT], ea_im[EDGE_AUDIO_N_FFT];

/* in place, iterative radix-2 decimation in time; twiddles are tables (cos, -sin of 2 pi k / N) */
static void ea_fft(float *re, float *im) {
    const int n = EDGE_AUDIO_N_FFT;
    for (int i = 1, j = 0; i < n; ++i) {
        int bit = n >> 1;
        for (; j & bit; bit >>= 1) {
            j ^= bit;
        }
        j |= bit;
        if (i < j) {
            float t = re[i]; re[i] = re[j]; re[j] = t;
            t = im[i]; im[i] = im[j]; im[j] = t;
        }
    }
    for (int length = 2; length <= n; length <<= 1) {
        const int half = length >> 1, stride = n / length;
        for (int start = 0; start < n; start += length) {
            for (int k = 0; k < half; ++k) {
                const float c = edge_audio_fft_cos[k * stride], s = edge_audio_fft_sin[k * stride];
                const int a = start + k, b = a + half;
                const float tr = re[b] * c - im[b] * s, ti = re[b] * s + im[b] * c;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
    }
}

void edge_audio_log_mel(const int16_t *pcm, float *features) {
    const int n = EDGE_AUDIO_N_FFT, length = EDGE_AUDIO_CLIP_SAMPLES;
    for (int frame = 0; frame < EDGE_AUDIO_FRAMES; ++frame) {
        for (int i = 0; i < n; ++i) {
            int j = frame * EDGE_AUDIO_HOP - n / 2 + i;
            j = j < 0 ? -j : j >= length ? 2 * (length - 1) - j : j; /* reflect */
            ea_re[i] = (float)pcm[j] * (1.0f / 32768.0f) * edge_audio_window[i];
            ea_im[i] = 0.0f;
        }
        ea_fft(ea_re, ea_im);
        for (int m = 0; m < EDGE_AUDIO_N_MELS; ++m) {
            float mel = 0.0f;
            for (int k = edge_audio_mel_first[m]; k <= edge_audio_mel_last[m]; ++k) {
                mel += edge_audio_mel_filterbank[m][k] * (ea_re[k] * ea_re[k] + ea_im[k] * ea_im[k]);
            }
            features[m * EDGE_AUDIO_FRAMES + frame] = logf(mel + EDGE_AUDIO_LOG_EPSILON);
        }
    }
}

void edge_audio_features(const int16_t *pcm, edge_audio_value_t *input) {
    static float features[EDGE_AUDIO_N_MELS * EDGE_AUDIO_FRAMES];
    const int32_t low = (int32_t)sizeof(edge_audio_value_t) == 1 ? -128 : -32768;
    const int32_t high = (int32_t)sizeof(edge_audio_value_t) == 1 ? 127 : 32767;
    edge_audio_log_mel(pcm, features);
    for (int i = 0; i < EDGE_AUDIO_N_MELS * EDGE_AUDIO_FRAMES; ++i) {
        const int32_t q = (int32_t)lrintf(features[i] / EDGE_AUDIO_NETWORK_INPUT_SCALE) +
                          EDGE_AUDIO_NETWORK_INPUT_ZERO_POINT;
        input[i] = (edge_audio_value_t)(q < low ? low : q > high ? high : q);
    }
}

void edge_audio_classify(const int16_t *pcm, edge_audio_value_t *scores) {
    static edge_audio_value_t input[EDGE_AUDIO_NETWORK_INPUT_ELEMENTS];
    edge_audio_features(pcm, input);
    edge_audio_invoke(input, scores);
}
