/* The generated network on an emulated board: calibrates the instruction counter, runs every embedded input,
 * prints each output (hex), the instructions of every inference and layer, and the stack's high-water mark.
 *
 * Instructions are counted with QEMU's -icount (every instruction advances the virtual clock by the same time)
 * read through the core's SysTick on the processor clock; the ticks of a loop of known length (two instructions
 * per iteration) calibrate ticks to instructions, and the host does that arithmetic. */
#include <stdint.h>

#include "inputs.h"
#include "network.h"

void ea_semihost_write(const char *text);
extern uint32_t _stack_limit;

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
#define EA_PAINT 0xA5A5A5A5u

static volatile uint32_t ea_wraps;
static uint64_t ea_layer_ticks[EDGE_AUDIO_NETWORK_LAYERS];
static uint64_t ea_mark;

void ea_systick_handler(void) {
    ++ea_wraps;
}

static uint64_t ea_ticks(void) {
    uint32_t wraps, value;
    do {
        wraps = ea_wraps;
        value = SYST_CVR;
    } while (wraps != ea_wraps);
    return (uint64_t)wraps * 0x1000000u + (0xFFFFFFu - value);
}

void ea_layer_done(int layer) {
    const uint64_t now = ea_ticks();
    ea_layer_ticks[layer] += now - ea_mark;
    ea_mark = now;
}

static void ea_print_number(const char *label, uint64_t value) {
    char text[32];
    int n = 0;
    char digits[24];
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    int i = 0;
    while (n) {
        text[i++] = digits[--n];
    }
    text[i] = 0;
    ea_semihost_write(label);
    ea_semihost_write(text);
    ea_semihost_write("\n");
}

static void ea_print_bytes(const void *data, uint32_t size) {
    static char line[2 * 512 + 8];
    const uint8_t *bytes = (const uint8_t *)data;
    uint32_t n = 0;
    for (uint32_t i = 0; i < size && n + 3 < sizeof line; ++i) {
        line[n++] = "0123456789abcdef"[bytes[i] >> 4];
        line[n++] = "0123456789abcdef"[bytes[i] & 15u];
    }
    line[n++] = '\n';
    line[n] = 0;
    ea_semihost_write("output ");
    ea_semihost_write(line);
}

__attribute__((noinline)) static void ea_calibration_loop(uint32_t iterations) {
    __asm volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(iterations) : : "cc");
}

int main(void) {
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt on wrap, enabled */
    while (SYST_CVR == 0) { /* until the first reload */
    }

    const uint32_t iterations = 1000000u;
    const uint64_t start = ea_ticks();
    ea_calibration_loop(iterations);
    ea_print_number("calibration_instructions ", 2ull * iterations);
    ea_print_number("calibration_ticks ", ea_ticks() - start);

    /* paint the free stack, run, and find the deepest word written */
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *word = &_stack_limit; word < sp - 16; ++word) {
        *word = EA_PAINT;
    }
    static edge_audio_value_t output[EDGE_AUDIO_NETWORK_OUTPUT_ELEMENTS];
    for (uint32_t i = 0; i < EA_INPUT_COUNT; ++i) {
        const uint64_t begin = ea_ticks();
        ea_mark = begin;
        edge_audio_invoke(ea_inputs[i], output);
        ea_print_number("inference_ticks ", ea_ticks() - begin);
        ea_print_bytes(output, sizeof output);
    }
    uint32_t *word = &_stack_limit;
    while (*word == EA_PAINT) {
        ++word;
    }
    ea_print_number("stack_bytes ", (uint32_t)((char *)sp - (char *)word));
    for (int layer = 0; layer < EDGE_AUDIO_NETWORK_LAYERS; ++layer) {
        ea_print_number("layer_ticks ", ea_layer_ticks[layer]);
    }
    return 0;
}
