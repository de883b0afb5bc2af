/* entry.c - entry point, halt point, fault trap, stack, buffers and build id. */
#include "chip.h"
#include "loader.h"

#ifndef QL_BUILD_ID
#error "QL_BUILD_ID must be defined by the build (hash of the sources)"
#endif

__attribute__((used)) const uint32_t qspi_loader_build_id = QL_BUILD_ID;

QL_NOINIT __attribute__((aligned(8))) uint32_t ql_stack_mem[QL_STACK_BYTES / 4u];
QL_NOINIT __attribute__((aligned(4))) uint8_t ql_scratch_mem[2][QL_SCRATCH_BYTES];
QL_NOINIT __attribute__((aligned(4))) uint8_t ql_buffer_mem[QL_NBUF * QL_BUF_SIZE];

void qspi_loader_fault(void);

/* Faults during a call halt on a distinct `bkpt` so the host can tell them from a normal
 * return (VTOR points here only while the loader runs). 512-byte alignment satisfies VTOR on
 * both cores. */
__attribute__((used, aligned(512))) const uint32_t ql_vectors[16] = {
    0u,
    0u,
    (uint32_t)(uintptr_t)qspi_loader_fault, /* NMI */
    (uint32_t)(uintptr_t)qspi_loader_fault, /* HardFault */
    (uint32_t)(uintptr_t)qspi_loader_fault, /* MemManage */
    (uint32_t)(uintptr_t)qspi_loader_fault, /* BusFault */
    (uint32_t)(uintptr_t)qspi_loader_fault, /* UsageFault */
    (uint32_t)(uintptr_t)qspi_loader_fault, /* SecureFault (M33) */
    0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u,
};

__attribute__((naked, used)) void qspi_loader_fault(void)
{
    __asm volatile(
        ".global qspi_loader_fault_halt\n"
        "qspi_loader_fault_halt:\n"
        "    bkpt #0xFA\n"
        "    b qspi_loader_fault_halt\n");
}

__attribute__((naked, used)) void qspi_loader_entry(void)
{
    __asm volatile(
        "    cpsid i\n"
#if defined(QL_TARGET_NRF5340)
        "    movs r0, #0\n"
        "    msr msplim, r0\n" /* an application's stack limit must not trap our stack */
        "    msr psplim, r0\n"
#endif
        "    movs r0, #0\n"
        "    msr control, r0\n" /* privileged, main stack, no FP context */
        "    isb\n"
        "    ldr r0, =ql_stack_mem + " QL_STR(QL_STACK_BYTES) "\n"
        "    mov sp, r0\n"
        "    bl ql_main\n" /* runs until the host halts it; never returns */
        "    b qspi_loader_fault_halt\n"
        "    .ltorg\n");
}
