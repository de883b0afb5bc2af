/* Entry of the test programs: set the stack, call main, stop on bkpt with main's result in r0. */
    .syntax unified
    .thumb
    .section .text.start, "ax"
    .global _start
    .type _start, %function
_start:
    ldr r0, =__stack_top
    mov sp, r0
    bl main
    bkpt #0
1:  b 1b
