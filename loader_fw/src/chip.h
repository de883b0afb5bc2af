/*
 * chip.h - register addresses the loader uses, per chip (from QSPI_FACTS.md and the nRF
 * product specifications). No nrfx: both builds (freestanding and Zephyr) share all logic and
 * differ only in the constants below. Select the chip with -DQL_TARGET_NRF52840 or
 * -DQL_TARGET_NRF5340 (the app core, secure addresses).
 */
#ifndef QL_CHIP_H
#define QL_CHIP_H

#include <stdint.h>

#define QL_STR_(x) #x
#define QL_STR(x) QL_STR_(x)
#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* Loader state must be zero when the host has just loaded the ELF, and the host jumps straight
 * to qspi_loader_entry (no C runtime start-up, also in the Zephyr build). So every static
 * variable lives in a loaded data section, never in .bss. */
#define QL_DATA __attribute__((section(".data.ql")))

/* Memory that needs no initial value: stack, CRC scratch and the data buffers. The freestanding
 * linker script places .ql_noinit after the image (NOLOAD); the Zephyr build overrides this. */
#ifndef QL_NOINIT
#define QL_NOINIT __attribute__((section(".ql_noinit")))
#endif

/* ---- QSPI register offsets (identical layout on both chips, QSPI_FACTS.md §1) ---- */
#define QSPI_TASKS_ACTIVATE     0x000u
#define QSPI_TASKS_READSTART    0x004u
#define QSPI_TASKS_WRITESTART   0x008u
#define QSPI_TASKS_ERASESTART   0x00Cu
#define QSPI_TASKS_DEACTIVATE   0x010u
#define QSPI_ERRATA_122_REG     0x054u /* nRF52840 erratum 122: write 1 before ENABLE = 0 */
#define QSPI_EVENTS_READY       0x100u
#define QSPI_INTENSET           0x304u
#define QSPI_INTENCLR           0x308u
#define QSPI_ENABLE             0x500u
#define QSPI_READ_SRC           0x504u
#define QSPI_READ_DST           0x508u
#define QSPI_READ_CNT           0x50Cu
#define QSPI_WRITE_DST          0x510u
#define QSPI_WRITE_SRC          0x514u
#define QSPI_WRITE_CNT          0x518u
#define QSPI_ERASE_PTR          0x51Cu
#define QSPI_ERASE_LEN          0x520u
#define QSPI_PSEL_SCK           0x524u
#define QSPI_PSEL_CSN           0x528u
#define QSPI_PSEL_IO0           0x530u
#define QSPI_PSEL_IO1           0x534u
#define QSPI_PSEL_IO2           0x538u
#define QSPI_PSEL_IO3           0x53Cu
#define QSPI_IFCONFIG0          0x544u
#define QSPI_IFCONFIG1          0x600u
#define QSPI_STATUS             0x604u
#define QSPI_ADDRCONF           0x624u
#define QSPI_CINSTRCONF         0x634u
#define QSPI_CINSTRDAT0         0x638u
#define QSPI_CINSTRDAT1         0x63Cu
#define QSPI_IFTIMING           0x640u

#define QSPI_CINSTRCONF_LIO2    (1u << 12)
#define QSPI_CINSTRCONF_LIO3    (1u << 13)
#define QSPI_CINSTRCONF_WIPWAIT (1u << 14)
#define QSPI_CINSTRCONF_WREN    (1u << 15)
#define QSPI_CINSTRCONF_LFEN    (1u << 16)
#define QSPI_CINSTRCONF_LFSTOP  (1u << 17)
#define QSPI_ADDRCONF_RESET     0x000000B7u /* OPCODE = EN4B, MODE = NoInstr */

/* ---- TIMER (same layout on both chips) ---- */
#define TIMER_TASKS_START       0x000u
#define TIMER_TASKS_STOP        0x004u
#define TIMER_TASKS_CLEAR       0x00Cu
#define TIMER_TASKS_CAPTURE1    0x044u
#define TIMER_EVENTS_COMPARE0   0x140u
#define TIMER_INTENSET          0x304u
#define TIMER_INTENCLR          0x308u
#define TIMER_MODE              0x504u
#define TIMER_BITMODE           0x508u
#define TIMER_PRESCALER         0x510u
#define TIMER_CC0               0x540u
#define TIMER_CC1               0x544u
#define TIMER_INT_COMPARE0      (1u << 16)

/* ---- CLOCK ---- */
#define CLOCK_TASKS_HFCLKSTART  0x000u
#define CLOCK_EVENTS_HFCLKSTARTED 0x100u
#define CLOCK_HFCLKSTAT         0x40Cu

/* ---- GPIO PIN_CNF fields ---- */
#define PIN_CNF_DIR_OUT         (1u << 0)
#define PIN_CNF_INPUT_DISCONNECT (1u << 1)
#define PIN_CNF_DRIVE_H0H1      (3u << 8)
#define PIN_CNF_MCUSEL_PERIPHERAL (3u << 28)

/* ---- System Control Space (ARMv7-M / ARMv8-M) ---- */
#define SCB_VTOR                0xE000ED08u
#define NVIC_ISER0              0xE000E100u
#define NVIC_ICER0              0xE000E180u
#define NVIC_ICPR0              0xE000E280u

#if defined(QL_TARGET_NRF52840)
#define QL_CHIP_ID              52840u
#define QSPI_BASE               0x40029000u
#define QSPI_IRQN               41u
#define QSPI_CNT_MAX            0x3FFFCu   /* 18-bit CNT (QSPI_FACTS.md §1) */
#define TIMER_BASE              0x40008000u /* TIMER0 */
#define TIMER_IRQN              8u
#define CLOCK_BASE              0x40000000u
#define GPIO_P0_BASE            0x50000000u
#define GPIO_P1_BASE            0x50000300u
#define GPIO_OUTSET             0x508u
#define GPIO_PIN_CNF0           0x700u
#ifndef QL_NBUF
#define QL_NBUF                 6u          /* 6 x 32 KiB data buffers */
#define QL_BUF_SIZE             0x8000u
#endif
#elif defined(QL_TARGET_NRF5340)
#define QL_CHIP_ID              5340u
#define QSPI_BASE               0x5002B000u /* secure alias */
#define QSPI_IRQN               43u
/* CNT: 21 bits per the bitfields header, 20 bits per the MDK peripherals header: the smaller */
#define QSPI_CNT_MAX            0xFFFFCu
#define TIMER_BASE              0x5000F000u /* TIMER0_S */
#define TIMER_IRQN              15u
#define CLOCK_BASE              0x50005000u /* CLOCK_S */
#define CLOCK_HFCLKCTRL         0x558u      /* 0 = Div1 (128 MHz), 1 = Div2 (64 MHz) */
#define CLOCK_HFCLK192MCTRL     0x5B8u      /* 0 = Div1, 1 = Div2, 2 = Div4 */
#define GPIO_P0_BASE            0x50842500u /* P0_S */
#define GPIO_P1_BASE            0x50842800u /* P1_S */
#define GPIO_OUTSET             0x008u
#define GPIO_PIN_CNF0           0x200u
#define FICR_INFO_PART          0x00FF0130u /* nrfx errata check: var1 */
#define FICR_INFO_VARIANT       0x00FF0134u /* nrfx errata check: var2 (revision) */
/* dedicated QSPI pins (nrfx_mdk_fixups.h) */
#define QSPI_PIN_SCK            17u
#define QSPI_PIN_CSN            18u
#define QSPI_PIN_IO0            13u
#define QSPI_PIN_IO1            14u
#define QSPI_PIN_IO2            15u
#define QSPI_PIN_IO3            16u
#ifndef QL_NBUF
#define QL_NBUF                 14u         /* 14 x 32 KiB data buffers */
#define QL_BUF_SIZE             0x8000u
#endif
#else
#error "define QL_TARGET_NRF52840 or QL_TARGET_NRF5340"
#endif

#ifndef QL_STACK_BYTES
#define QL_STACK_BYTES          2048u
#endif
/* each of the two CRC read-ahead halves: reading a chunk (quad SPI) takes about as long as
 * summing it, so the read-ahead hides the reads. 8 KiB: a DMA set-up and a wake-up per 8 KiB
 * (0.2 % of the chunk's time on silicon; the virtual board emulates a CRC pass 2.8 x faster
 * than with 2 KiB, its MMIO being the cost); both prebuilt loaders still fit (nRF52840: 6 KiB
 * left above the stack, nRF5340: 2 KiB). The Zephyr form keeps 2 KiB (Zephyr shares its RAM). */
#ifndef QL_SCRATCH_BYTES
#define QL_SCRATCH_BYTES        8192u
#endif

#define QSPI(off)  REG32(QSPI_BASE + (off))
#define TIMER(off) REG32(TIMER_BASE + (off))
#define CLOCK(off) REG32(CLOCK_BASE + (off))

#endif /* QL_CHIP_H */
