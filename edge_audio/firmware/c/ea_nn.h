/* edge-audio's int8 (and 16x8) neural-network kernels: TensorFlow Lite's integer arithmetic, written for this
 * project in plain C99 (no third-party source). Every kernel computes what TensorFlow Lite Micro's reference kernel
 * of the same operator computes, byte for byte: per-channel multipliers and shifts applied with TFLite's
 * double rounding (a saturating rounding doubling high multiply, then a rounding right shift), average pooling's
 * rounding division, MEAN's multiplier with the count folded in, and gemmlowp's fixed-point exponential in SOFTMAX. The one hot loop, a dot product
 * over input channels (convolution, fully connected), uses the core's SIMD when the compiler says it has it:
 * the DSP extension's __smlad on Cortex-M4/M7/M33, Helium (MVE) on Cortex-M55; define EA_PLAIN_C to build the
 * plain loop instead (the emulated-board measurement compares the two). */
#ifndef EA_NN_H
#define EA_NN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A convolution, depthwise convolution, pooling or MEAN over an NHWC map of batch 1. */
typedef struct {
    int16_t in_h, in_w, in_c, out_h, out_w, out_c;
    int16_t k_h, k_w, stride_h, stride_w, pad_h, pad_w, depth_multiplier;
    int32_t input_offset, output_offset, act_min, act_max;
    const void *weights;       /* int8: [out_c][k_h][k_w][in_c] (conv) or [k_h][k_w][out_c] (depthwise) */
    const void *bias;          /* int32 (int8 activations) or int64 (16x8), one per output channel, or NULL */
    const int32_t *multiplier; /* one per output channel (MEAN: one) */
    const int8_t *shift;       /* TFLite's exponent: > 0 shifts left, < 0 right */
} ea_map_op;

/* A fully connected layer: out[o] = requantize(bias[o] + sum_i (in[i] + input_offset) * w[o][i]). */
typedef struct {
    int32_t depth, units;
    int32_t input_offset, output_offset, act_min, act_max, multiplier, shift;
    const int8_t *weights;     /* [units][depth] */
    const void *bias;          /* int32 or int64, or NULL */
} ea_dense_op;

/* SOFTMAX of int8 logits to int8 probabilities (scale 1/256, zero point -128), TFLite's fixed-point scheme. */
typedef struct {
    int32_t rows, depth, input_multiplier, input_left_shift, diff_min;
} ea_softmax_op;

/* TFLite's MultiplyByQuantizedMultiplier (double rounding), for an int32 and for an int64 accumulator. */
int32_t ea_requantize(int32_t x, int32_t multiplier, int shift);
int32_t ea_requantize64(int64_t x, int32_t multiplier, int shift);
/* sum_i (x[i] + x_offset) * w[i]: the hot loop (SIMD where the core has it, see above). */
int32_t ea_dot_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t x_offset);

void ea_conv_s8(const ea_map_op *op, const int8_t *in, int8_t *out);
void ea_depthwise_conv_s8(const ea_map_op *op, const int8_t *in, int8_t *out);
void ea_max_pool_s8(const ea_map_op *op, const int8_t *in, int8_t *out);
void ea_avg_pool_s8(const ea_map_op *op, const int8_t *in, int8_t *out);
void ea_mean_s8(const ea_map_op *op, const int8_t *in, int8_t *out);
void ea_dense_s8(const ea_dense_op *op, const int8_t *in, int8_t *out);
void ea_softmax_s8(const ea_softmax_op *op, const int8_t *in, int8_t *out);

void ea_conv_s16(const ea_map_op *op, const int16_t *in, int16_t *out);
void ea_depthwise_conv_s16(const ea_map_op *op, const int16_t *in, int16_t *out);
void ea_max_pool_s16(const ea_map_op *op, const int16_t *in, int16_t *out);
void ea_avg_pool_s16(const ea_map_op *op, const int16_t *in, int16_t *out);
void ea_mean_s16(const ea_map_op *op, const int16_t *in, int16_t *out);
void ea_dense_s16(const ea_dense_op *op, const int16_t *in, int16_t *out);

#ifdef __cplusplus
}
#endif
#endif
