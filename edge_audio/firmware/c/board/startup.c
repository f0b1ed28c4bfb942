/* Reset and fault handling of an emulated Cortex-M board (no vendor code): the vector table, the FPU (and Helium)
 * enabled, .data copied and .bss zeroed, main() called, the result reported to the host by semihosting. */
#include <stdint.h>
#include <string.h>

extern uint32_t _stack_top, _data_load, _data_start, _data_end, _bss_start, _bss_end;
int main(void);
void ea_semihost_exit(int failed);
void ea_semihost_write(const char *text);
void ea_systick_handler(void);

static void ea_hex(char *out, uint32_t value) {
    for (int i = 7; i >= 0; --i, value >>= 4) {
        out[i] = "0123456789abcdef"[value & 15u];
    }
    out[8] = 0;
}

/* A fault is reported with the registers that name it, and the run ends (never a silent hang). */
void ea_fault_handler(void) {
    volatile uint32_t *scb = (volatile uint32_t *)0xE000ED28; /* CFSR, HFSR, DFSR, MMFAR, BFAR */
    char word[9];
    uint32_t *frame;
    __asm volatile("mrs %0, msp" : "=r"(frame));
    ea_semihost_write("FAULT cfsr=");
    ea_hex(word, scb[0]);
    ea_semihost_write(word);
    ea_semihost_write(" hfsr=");
    ea_hex(word, scb[1]);
    ea_semihost_write(word);
    ea_semihost_write(" pc=");
    ea_hex(word, frame[6]);
    ea_semihost_write(word);
    ea_semihost_write("\n");
    ea_semihost_exit(1);
}

void ea_reset_handler(void) {
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: CP10 and CP11 (FPU, Helium) full access */
    __asm volatile("dsb\n isb");
    memcpy(&_data_start, &_data_load, (uint32_t)((char *)&_data_end - (char *)&_data_start));
    memset(&_bss_start, 0, (uint32_t)((char *)&_bss_end - (char *)&_bss_start));
    ea_semihost_exit(main() != 0);
}

__attribute__((section(".vectors"), used)) static void (*const ea_vectors[16])(void) = {
    (void (*)(void))&_stack_top, ea_reset_handler, ea_fault_handler, ea_fault_handler, ea_fault_handler,
    ea_fault_handler, ea_fault_handler, 0, 0, 0, 0, ea_fault_handler, ea_fault_handler, 0, ea_fault_handler,
    ea_systick_handler,
};

/* -- semihosting (Arm's BKPT 0xAB convention) ---------------------------------------------------------------- */

static uint32_t ea_semihost(uint32_t operation, const void *argument) {
    register uint32_t r0 __asm("r0") = operation;
    register const void *r1 __asm("r1") = argument;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void ea_semihost_write(const char *text) {
    ea_semihost(0x04, text); /* SYS_WRITE0 */
}

void ea_semihost_exit(int failed) {
    /* SYS_EXIT: ADP_Stopped_ApplicationExit, or ADP_Stopped_RunTimeErrorUnknown */
    ea_semihost(0x18, (const void *)(failed ? 0x20023u : 0x20026u));
    for (;;) {
    }
}
