/* hw.h - timer, sleeping waits, interrupts and clocks of the loader. */
#ifndef QL_HW_H
#define QL_HW_H

#include <stdint.h>

#include "chip.h"

/* Microsecond time from TIMER0 (32-bit, 1 MHz, wraps after ~71 minutes). */
void hw_timer_start(void);
void hw_timer_stop(void);
uint32_t hw_now_us(void);

/* Sleep (WFI, PRIMASK = 1) until *event != 0 or `timeout_us` after `start` has passed.
 * Returns 1 if the event came (the event register is left set), 0 on time-out. */
int hw_wait_event(volatile uint32_t *event, uint32_t start, uint32_t timeout_us);

/* Sleep for `us` microseconds (WFI on a TIMER compare). */
void hw_delay_us(uint32_t us);

/* Both waits wake at least every QL_HEARTBEAT_US and call ql_tick() (the published time). */

/* The service loop's idle sleep: until an enabled interrupt is pending (QSPI READY) or `us`
 * passed. */
void hw_idle_wait(uint32_t us);

/* WFI with nothing to wake it: after QL_OP_EXIT, until the debugger halts the core. */
void hw_sleep_forever(void);

/* NVIC lines of QSPI and TIMER: enabled while the loader runs, disabled while halted. */
void hw_irqs_enable(void);
void hw_irqs_disable(void);
void hw_irq_clear_pending(uint32_t irqn);

/* Clocks for QSPI: nRF52840 HFXO (erratum 244); nRF5340 HCLK /2 + HFCLK192M /1 (erratum 159)
 * and HFXO. Returns 0 on success. hw_clocks_restore undoes the divider changes. */
int hw_clocks_setup(void);
void hw_clocks_restore(void);

/* Pins for QSPI (input buffer disconnected, H0H1; CSN/IO3 driven high when idle; nRF5340:
 * MCUSEL = Peripheral). Saves the previous PIN_CNF values for hw_pins_restore. */
void hw_pins_setup(const uint32_t pins[6]);
void hw_pins_restore(void);

/* nRF5340 erratum 121 applies (nrfx rule: every revision but Engineering A). */
int hw_errata_121(void);

#endif /* QL_HW_H */
