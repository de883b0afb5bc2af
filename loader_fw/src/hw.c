/* hw.c - timer, sleeping waits, interrupts, clocks and pins. */
#include "hw.h"

#include "loader.h"
#include "qspi_mailbox.h"

#define HFXO_START_TIMEOUT_US 100000u
#define CLOCK_SWITCH_SETTLE_US 7u /* Zephyr nrf_qspi_nor: BASE_CLOCK_SWITCH_DELAY_US */

QL_DATA static uint32_t saved_pin_cnf[6];
QL_DATA static uint32_t saved_pins[6];
QL_DATA static uint32_t pins_saved;
QL_DATA static uint32_t timer_running;
#if defined(QL_TARGET_NRF5340)
QL_DATA static uint32_t saved_hfclkctrl;
QL_DATA static uint32_t saved_hfclk192mctrl;
QL_DATA static uint32_t clocks_saved;
#endif

static inline void wfi(void) { __asm volatile("dsb\n wfi" ::: "memory"); }

void hw_timer_start(void)
{
    if (timer_running && TIMER(TIMER_BITMODE) == 3u &&
        (TIMER(TIMER_INTENSET) & TIMER_INT_COMPARE0)) {
        TIMER(TIMER_TASKS_START) = 1u; /* no-op if running; after a reset it is reconfigured */
        return;                        /* keep the time base across calls: deadlines span halts */
    }
    TIMER(TIMER_TASKS_STOP) = 1u;
    TIMER(TIMER_MODE) = 0u;      /* timer */
    TIMER(TIMER_BITMODE) = 3u;   /* 32 bit */
    TIMER(TIMER_PRESCALER) = 4u; /* 16 MHz / 2^4 = 1 MHz */
    TIMER(TIMER_TASKS_CLEAR) = 1u;
    TIMER(TIMER_EVENTS_COMPARE0) = 0u;
    TIMER(TIMER_INTENSET) = TIMER_INT_COMPARE0;
    TIMER(TIMER_TASKS_START) = 1u;
    timer_running = 1u;
}

void hw_timer_stop(void)
{
    TIMER(TIMER_INTENCLR) = 0xFFFFFFFFu;
    TIMER(TIMER_TASKS_STOP) = 1u;
    TIMER(TIMER_EVENTS_COMPARE0) = 0u;
    timer_running = 0u;
    hw_irq_clear_pending(TIMER_IRQN);
}

uint32_t hw_now_us(void)
{
    TIMER(TIMER_TASKS_CAPTURE1) = 1u;
    return TIMER(TIMER_CC1);
}

void hw_irq_clear_pending(uint32_t irqn)
{
    REG32(NVIC_ICPR0 + 4u * (irqn / 32u)) = 1u << (irqn % 32u);
}

void hw_irqs_enable(void)
{
    REG32(NVIC_ISER0 + 4u * (QSPI_IRQN / 32u)) = 1u << (QSPI_IRQN % 32u);
    REG32(NVIC_ISER0 + 4u * (TIMER_IRQN / 32u)) = 1u << (TIMER_IRQN % 32u);
}

void hw_irqs_disable(void)
{
    REG32(NVIC_ICER0 + 4u * (QSPI_IRQN / 32u)) = 1u << (QSPI_IRQN % 32u);
    REG32(NVIC_ICER0 + 4u * (TIMER_IRQN / 32u)) = 1u << (TIMER_IRQN % 32u);
    hw_irq_clear_pending(QSPI_IRQN);
    hw_irq_clear_pending(TIMER_IRQN);
}

/* Arm CC0 at `deadline`; returns 0 if the deadline already passed (no wake-up would come). */
static int arm_compare(uint32_t start, uint32_t timeout_us)
{
    TIMER(TIMER_EVENTS_COMPARE0) = 0u;
    (void)TIMER(TIMER_EVENTS_COMPARE0);
    hw_irq_clear_pending(TIMER_IRQN);
    TIMER(TIMER_CC0) = start + timeout_us;
    return (hw_now_us() - start) < timeout_us;
}

/* The next wake-up: `timeout_us` after `start`, but no later than one heartbeat from now, so
 * the published time stays fresh during long waits. */
static uint32_t wake_in(uint32_t start, uint32_t timeout_us)
{
    uint32_t left = timeout_us - (hw_now_us() - start);
    return left < QL_HEARTBEAT_US ? left : QL_HEARTBEAT_US;
}

int hw_wait_event(volatile uint32_t *event, uint32_t start, uint32_t timeout_us)
{
    ql_tick(); /* also when the event is already there: busy loops (CRC) wait here too */
    for (;;) {
        if (*event) {
            return 1;
        }
        if ((hw_now_us() - start) >= timeout_us) {
            return *event ? 1 : 0;
        }
        if (!arm_compare(hw_now_us(), wake_in(start, timeout_us))) {
            continue;
        }
        if (*event) {
            return 1;
        }
        wfi(); /* PRIMASK = 1: wakes on the pending QSPI / TIMER interrupt without taking it */
        ql_tick();
    }
}

void hw_delay_us(uint32_t us)
{
    uint32_t start = hw_now_us();
    while ((hw_now_us() - start) < us) {
        if (!arm_compare(hw_now_us(), wake_in(start, us))) {
            continue;
        }
        if (!TIMER(TIMER_EVENTS_COMPARE0)) {
            wfi();
        }
        ql_tick();
    }
    TIMER(TIMER_EVENTS_COMPARE0) = 0u;
    hw_irq_clear_pending(TIMER_IRQN);
}

void hw_idle_wait(uint32_t us)
{
    TIMER(TIMER_EVENTS_COMPARE0) = 0u;
    (void)TIMER(TIMER_EVENTS_COMPARE0);
    TIMER(TIMER_CC0) = hw_now_us() + us;
    if (!TIMER(TIMER_EVENTS_COMPARE0)) {
        wfi();
    }
    TIMER(TIMER_EVENTS_COMPARE0) = 0u;
    hw_irq_clear_pending(TIMER_IRQN);
}

void hw_sleep_forever(void)
{
    wfi(); /* no interrupt line is enabled: only a debugger halt ends this */
}

static int hfxo_start(void)
{
    uint32_t stat = CLOCK(CLOCK_HFCLKSTAT);
    if ((stat & (1u << 16)) && (stat & 1u)) {
        return 0; /* already running from the crystal (STATE = running, SRC = Xtal) */
    }
    CLOCK(CLOCK_EVENTS_HFCLKSTARTED) = 0u;
    CLOCK(CLOCK_TASKS_HFCLKSTART) = 1u;
    uint32_t start = hw_now_us();
    while (!CLOCK(CLOCK_EVENTS_HFCLKSTARTED)) {
        /* the event read after the deadline decides (the host may have halted the core) */
        if ((hw_now_us() - start) >= HFXO_START_TIMEOUT_US && !CLOCK(CLOCK_EVENTS_HFCLKSTARTED)) {
            return -1;
        }
        hw_delay_us(50u);
    }
    CLOCK(CLOCK_EVENTS_HFCLKSTARTED) = 0u;
    return 0;
}

int hw_clocks_setup(void)
{
#if defined(QL_TARGET_NRF5340)
    if (!clocks_saved) {
        saved_hfclkctrl = CLOCK(CLOCK_HFCLKCTRL);
        saved_hfclk192mctrl = CLOCK(CLOCK_HFCLK192MCTRL);
        clocks_saved = 1u;
    }
    CLOCK(CLOCK_HFCLKCTRL) = 1u;     /* HCLK /2 = 64 MHz CPU (erratum 159) */
    CLOCK(CLOCK_HFCLK192MCTRL) = 0u; /* HFCLK192M /1: PCLK192M = 192 MHz (erratum 159) */
    hw_delay_us(CLOCK_SWITCH_SETTLE_US);
#endif
    return hfxo_start();
}

void hw_clocks_restore(void)
{
#if defined(QL_TARGET_NRF5340)
    if (clocks_saved) {
        CLOCK(CLOCK_HFCLK192MCTRL) = saved_hfclk192mctrl;
        CLOCK(CLOCK_HFCLKCTRL) = saved_hfclkctrl;
        clocks_saved = 0u;
    }
#endif
}

static uint32_t pin_cnf_addr(uint32_t pin)
{
    uint32_t port = (pin >> 5) ? GPIO_P1_BASE : GPIO_P0_BASE;
    return port + GPIO_PIN_CNF0 + 4u * (pin & 31u);
}

void hw_pins_setup(const uint32_t pins[6])
{
    /* order: SCK CSN IO0 IO1 IO2 IO3 */
    for (uint32_t i = 0; i < 6u; i++) {
        saved_pins[i] = pins[i];
        if (pins[i] == 0xFFFFFFFFu) {
            continue;
        }
        uint32_t a = pin_cnf_addr(pins[i]);
        saved_pin_cnf[i] = REG32(a);
        uint32_t cnf = PIN_CNF_INPUT_DISCONNECT | PIN_CNF_DRIVE_H0H1;
#if defined(QL_TARGET_NRF5340)
        cnf |= PIN_CNF_MCUSEL_PERIPHERAL;
#endif
        if (i == 1u || i == 5u) { /* CSN and IO3 (HOLD#/RESET#) idle high */
            uint32_t port = (pins[i] >> 5) ? GPIO_P1_BASE : GPIO_P0_BASE;
            REG32(port + GPIO_OUTSET) = 1u << (pins[i] & 31u);
            cnf |= PIN_CNF_DIR_OUT;
        }
        REG32(a) = cnf;
    }
    pins_saved = 1u;
}

void hw_pins_restore(void)
{
    if (!pins_saved) {
        return;
    }
    for (uint32_t i = 0; i < 6u; i++) {
        if (saved_pins[i] != 0xFFFFFFFFu) {
            REG32(pin_cnf_addr(saved_pins[i])) = saved_pin_cnf[i];
        }
    }
    pins_saved = 0u;
}

int hw_errata_121(void)
{
#if defined(QL_TARGET_NRF5340)
    uint32_t var1 = REG32(FICR_INFO_PART);
    uint32_t var2 = REG32(FICR_INFO_VARIANT);
    if (var1 != 0x07u) {
        return 1; /* unknown part id: nrfx's default branch applies the workaround */
    }
    return var2 != 0x02u; /* Engineering A is the only revision without it */
#else
    return 0;
#endif
}
