/* edge-audio's integer kernels (see ea_nn.h). */
#include "ea_nn.h"

#include <string.h>

#if !defined(EA_PLAIN_C) && defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>
#define EA_DOT_MVE 1
#elif !defined(EA_PLAIN_C) && defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#define EA_DOT_DSP 1
static inline uint32_t ea_ror8(uint32_t v) { return (v >> 8) | (v << 24); }
#endif

/* -- TFLite's fixed-point arithmetic ---------------------------------------------------------------------------- */

static int32_t ea_rounding_doubling_high_mul(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * b;
    const int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static int32_t ea_rounding_divide_by_pot(int32_t x, int exponent) {
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t ea_requantize(int32_t x, int32_t multiplier, int shift) {
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return ea_rounding_divide_by_pot(ea_rounding_doubling_high_mul((int32_t)((uint32_t)x << left), multiplier), right);
}

int32_t ea_requantize64(int64_t x, int32_t multiplier, int shift) {
    /* the 16x8 path: the multiplier reduced to 16 bits, one rounding shift */
    const int32_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int total_shift = 15 - shift;
    const int64_t result = (x * reduced + ((int64_t)1 << (total_shift - 1))) >> total_shift;
    return (int32_t)result;
}

/* -- the hot loop ------------------------------------------------------------------------------------------------ */

int32_t ea_dot_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t x_offset) {
    int32_t acc = 0;
    int32_t i = 0;
#if defined(EA_DOT_MVE)
    /* sum x*w and sum w, 16 lanes at a time, the tail predicated */
    int32_t w_sum = 0;
    for (; i < n; i += 16) {
        const mve_pred16_t lanes = vctp8q((uint32_t)(n - i));
        const int8x16_t xv = vldrbq_z_s8(x + i, lanes), wv = vldrbq_z_s8(w + i, lanes);
        acc = vmladavaq_s8(acc, xv, wv);
        w_sum = vaddvaq_s8(w_sum, wv);
    }
    return acc + x_offset * w_sum;
#else
#if defined(EA_DOT_DSP)
    /* four int8 pairs per step: sign-extended to int16 lanes (the offset added on the way) and __smlad */
    const uint32_t offsets = ((uint32_t)x_offset & 0xFFFFu) | ((uint32_t)x_offset << 16);
    for (; i + 4 <= n; i += 4) {
        uint32_t xs, ws;
        memcpy(&xs, x + i, 4);
        memcpy(&ws, w + i, 4);
        const int16x2_t x_even = __sxtab16(offsets, xs), x_odd = __sxtab16(offsets, ea_ror8(xs));
        const int16x2_t w_even = __sxtb16(ws), w_odd = __sxtb16(ea_ror8(ws));
        acc = __smlad(x_even, w_even, acc);
        acc = __smlad(x_odd, w_odd, acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (x[i] + x_offset) * w[i];
    }
    return acc;
#endif
}

static int64_t ea_dot_s16(const int16_t *x, const int8_t *w, int32_t n, int32_t x_offset) {
    int64_t acc = 0;
    for (int32_t i = 0; i < n; ++i) {
        acc += (int64_t)(x[i] + x_offset) * w[i];
    }
    return acc;
}

/* -- the kernels, once per activation type ----------------------------------------------------------------------- */

#define EA_T int8_t
#define EA_SFX s8
#define EA_ACC int32_t
#define EA_BIAS int32_t
#define EA_REQ ea_requantize
#define EA_DOT ea_dot_s8
#include "ea_nn_ops.inc"
#undef EA_T
#undef EA_SFX
#undef EA_ACC
#undef EA_BIAS
#undef EA_REQ
#undef EA_DOT

#define EA_T int16_t
#define EA_SFX s16
#define EA_ACC int64_t
#define EA_BIAS int64_t
#define EA_REQ ea_requantize64
#define EA_DOT ea_dot_s16
#include "ea_nn_ops.inc"

/* -- SOFTMAX: gemmlowp's fixed point, as TFLite's reference kernel computes it ------------------------------------ */

/* a * b of two Q-format numbers (the result's integer bits are the sum of theirs) */
#define EA_FX_MUL ea_rounding_doubling_high_mul

static int32_t ea_saturating_shift_left(int32_t x, int exponent) {
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: a Taylor series around -1/8 */
static int32_t ea_exp_on_quarter_interval(int32_t a) {
    const int32_t constant_term = 1895147668, one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = EA_FX_MUL(x, x), x3 = EA_FX_MUL(x2, x), x4 = EA_FX_MUL(x2, x2);
    const int32_t x4_over_4 = ea_rounding_divide_by_pot(x4, 2);
    const int32_t series = ea_rounding_divide_by_pot(EA_FX_MUL(x4_over_4 + x3, one_third) + x2, 1);
    return constant_term + EA_FX_MUL(constant_term, x + series);
}

/* exp(a) for a <= 0 in Q5.26, the result in Q0.31 */
static int32_t ea_exp_on_negative_values(int32_t a) {
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t one_quarter = 1 << 24, mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_quarter = (a & mask) - one_quarter;
    int32_t result = ea_exp_on_quarter_interval(ea_saturating_shift_left(a_mod_quarter_minus_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    for (int k = 0; k < 7; ++k) { /* exponents -2 .. +4 of the barrel shifter */
        if (remainder & (1 << (24 + k))) {
            result = EA_FX_MUL(result, multipliers[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31 in and out: Newton-Raphson in Q2.29 */
static int32_t ea_one_over_one_plus_x(int32_t a) {
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + EA_FX_MUL(half_denominator, -1010580540);
    for (int i = 0; i < 3; ++i) {
        const int32_t one_minus = (1 << 29) - EA_FX_MUL(half_denominator, x);
        x = x + ea_saturating_shift_left(EA_FX_MUL(x, one_minus), 2);
    }
    return ea_saturating_shift_left(x, 1);
}

void ea_softmax_s8(const ea_softmax_op *op, const int8_t *in, int8_t *out) {
    for (int r = 0; r < op->rows; ++r, in += op->depth, out += op->depth) {
        int32_t max_in_row = -128;
        for (int c = 0; c < op->depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }
        int32_t sum_of_exps = 0; /* Q12.19 */
        for (int c = 0; c < op->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= op->diff_min) {
                const int32_t rescaled = EA_FX_MUL((int32_t)((uint32_t)diff << op->input_left_shift),
                                                   op->input_multiplier);
                sum_of_exps += ea_rounding_divide_by_pot(ea_exp_on_negative_values(rescaled), 12);
            }
        }
        /* the reciprocal of the sum, normalised to [1, 2) */
        int headroom_plus_one = 0;
        while (headroom_plus_one < 32 && !((uint32_t)sum_of_exps & (0x80000000u >> headroom_plus_one))) {
            ++headroom_plus_one;
        }
        const int num_bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - 0x80000000u);
        const int32_t shifted_scale = ea_one_over_one_plus_x(shifted_sum_minus_one);
        for (int c = 0; c < op->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            int32_t value = -128;
            if (diff >= op->diff_min) {
                const int32_t rescaled = EA_FX_MUL((int32_t)((uint32_t)diff << op->input_left_shift),
                                                   op->input_multiplier);
                const int32_t exp_in_0 = ea_exp_on_negative_values(rescaled);
                value = ea_rounding_divide_by_pot(EA_FX_MUL(shifted_scale, exp_in_0), num_bits_over_unit + 31 - 8) - 128;
                value = value < -128 ? -128 : value > 127 ? 127 : value;
            }
            out[c] = (int8_t)value;
        }
    }
}
