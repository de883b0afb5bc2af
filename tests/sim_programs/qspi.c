/* Drive the nRF QSPI peripheral by registers: activate, JEDEC ID by custom instruction,
 * erase a 4 KiB sector, program one page with EasyDMA and read it back.
 * Results go to `results` (read by the test through GDB); r0 = 0 on success, else the step
 * that failed. Build with -DNRF5340 for the nRF5340 application core. */
#include <stdint.h>

#define REG(addr) (*(volatile uint32_t *)(addr))

#ifdef NRF5340
#define QSPI 0x5002B000u
#define CLOCK 0x50005000u
#define PIN_SCK 17u
#define PIN_CSN 18u
#define PIN_IO0 13u
#define SCKFREQ 11u /* PCLK192M 192 MHz / (2 * 12) = 8 MHz */
#else
#define QSPI 0x40029000u
#define CLOCK 0x40000000u
#define PIN_SCK 19u
#define PIN_CSN 17u
#define PIN_IO0 20u
#define SCKFREQ 3u /* 32 MHz / 4 = 8 MHz */
#endif

#define TASKS_ACTIVATE (QSPI + 0x000)
#define TASKS_READSTART (QSPI + 0x004)
#define TASKS_WRITESTART (QSPI + 0x008)
#define TASKS_ERASESTART (QSPI + 0x00C)
#define EVENTS_READY (QSPI + 0x100)
#define ENABLE (QSPI + 0x500)
#define READ_SRC (QSPI + 0x504)
#define READ_DST (QSPI + 0x508)
#define READ_CNT (QSPI + 0x50C)
#define WRITE_DST (QSPI + 0x510)
#define WRITE_SRC (QSPI + 0x514)
#define WRITE_CNT (QSPI + 0x518)
#define ERASE_PTR (QSPI + 0x51C)
#define ERASE_LEN (QSPI + 0x520)
#define PSEL_SCK (QSPI + 0x524)
#define PSEL_CSN (QSPI + 0x528)
#define PSEL_IO0 (QSPI + 0x530)
#define IFCONFIG0 (QSPI + 0x544)
#define IFCONFIG1 (QSPI + 0x600)
#define CINSTRCONF (QSPI + 0x634)
#define CINSTRDAT0 (QSPI + 0x638)
#define IFTIMING (QSPI + 0x640)

#define FLASH_OFFSET 0x10000u
#define PAGE 256u
#define LIO2_LIO3 ((1u << 12) | (1u << 13))

struct results {
    uint32_t jedec;
    uint32_t status_after_program;
    uint32_t wip_polls;
    uint32_t mismatches;
    uint32_t step;
};

volatile struct results results;
static uint32_t page_out[PAGE / 4];
static uint32_t page_in[PAGE / 4];

static int wait_ready(void)
{
    for (uint32_t i = 0; i < 1000000u; i++)
        if (REG(EVENTS_READY))
            return 0;
    return -1;
}

static int cinstr(uint32_t opcode, uint32_t length, uint32_t *data0)
{
    REG(EVENTS_READY) = 0;
    REG(CINSTRCONF) = opcode | (length << 8) | LIO2_LIO3;
    if (wait_ready())
        return -1;
    *data0 = REG(CINSTRDAT0);
    return 0;
}

static int wait_not_busy(void)
{
    uint32_t sr = 1;
    for (uint32_t i = 0; i < 200000u; i++) {
        if (cinstr(0x05, 2, &sr))
            return -1;
        results.wip_polls++;
        if (!(sr & 1u))
            return 0;
    }
    return -1;
}

uint32_t main(void)
{
    uint32_t value;

    results.jedec = results.status_after_program = results.wip_polls = results.mismatches = 0;
    results.step = 1;
#ifdef NRF5340
    REG(CLOCK + 0x5B8) = 0; /* HFCLK192MCTRL: divide by 1 (erratum 159) */
#else
    REG(CLOCK + 0x100) = 0; /* EVENTS_HFCLKSTARTED */
    REG(CLOCK + 0x000) = 1; /* TASKS_HFCLKSTART (erratum 244: keep HFXO on) */
    for (uint32_t i = 0; !REG(CLOCK + 0x100); i++)
        if (i > 1000000u)
            return results.step;
#endif
    results.step = 2;
    REG(PSEL_SCK) = PIN_SCK;
    REG(PSEL_CSN) = PIN_CSN;
    for (uint32_t i = 0; i < 4; i++)
        REG(PSEL_IO0 + 4 * i) = PIN_IO0 + i;
    REG(IFCONFIG0) = 0; /* FASTREAD, PP, 24-bit addresses */
#ifdef NRF5340
    REG(IFCONFIG0) = 1u << 16; /* erratum 121 */
    REG(IFTIMING) = 6u << 8;
#endif
    REG(IFCONFIG1) = (REG(IFCONFIG1) & 0x00FFFF00u) | 0x05u | (SCKFREQ << 28);
    REG(ENABLE) = 1;
    REG(EVENTS_READY) = 0;
    REG(TASKS_ACTIVATE) = 1;
    if (wait_ready())
        return results.step;

    results.step = 3;
    if (cinstr(0x9F, 4, &value))
        return results.step;
    results.jedec = value & 0xFFFFFFu;

    results.step = 4;
    REG(ERASE_PTR) = FLASH_OFFSET;
    REG(ERASE_LEN) = 0; /* 4 KiB */
    REG(EVENTS_READY) = 0;
    REG(TASKS_ERASESTART) = 1;
    if (wait_ready() || wait_not_busy())
        return results.step;

    results.step = 5;
    for (uint32_t i = 0; i < PAGE / 4; i++)
        page_out[i] = 0x01020304u * (i + 1u) ^ 0xA5A5A5A5u;
    REG(WRITE_DST) = FLASH_OFFSET;
    REG(WRITE_SRC) = (uint32_t)page_out;
    REG(WRITE_CNT) = PAGE;
    REG(EVENTS_READY) = 0;
    REG(TASKS_WRITESTART) = 1;
    if (wait_ready() || wait_not_busy())
        return results.step;
    if (cinstr(0x05, 2, &value))
        return results.step;
    results.status_after_program = value & 0xFFu;

    results.step = 6;
    REG(READ_SRC) = FLASH_OFFSET;
    REG(READ_DST) = (uint32_t)page_in;
    REG(READ_CNT) = PAGE;
    REG(EVENTS_READY) = 0;
    REG(TASKS_READSTART) = 1;
    if (wait_ready())
        return results.step;
    for (uint32_t i = 0; i < PAGE / 4; i++)
        if (page_in[i] != page_out[i])
            results.mismatches++;
    results.step = 0;
    return results.mismatches ? 7 : 0;
}
