/* crc32.c - CRC-32, table-driven "slicing by 4" (four bytes per step, so summing keeps up with
 * quad SPI reads at 32 MHz SCK on a 64 MHz core). The tables are built on first use in no-init
 * RAM (not part of the downloaded image; only the ready flag is loaded data), so the loader
 * needs no start-up code. */
#include "crc32.h"

#include "chip.h"

typedef uint32_t __attribute__((may_alias)) word_alias;

QL_NOINIT static uint32_t table[4][256];
QL_DATA static uint32_t table_ready;

static void build_table(void)
{
    for (uint32_t i = 0; i < 256u; i++) {
        uint32_t c = i;
        for (uint32_t k = 0; k < 8u; k++) {
            c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
        }
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256u; i++) {
        uint32_t c = table[0][i];
        for (uint32_t k = 1; k < 4u; k++) {
            c = table[0][c & 0xFFu] ^ (c >> 8);
            table[k][i] = c;
        }
    }
    table_ready = 1u;
}

uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint32_t n)
{
    if (!table_ready) {
        build_table();
    }
    while (n > 0u && ((uintptr_t)p & 3u) != 0u) {
        crc = table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
        n--;
    }
    const word_alias *w = (const word_alias *)p;
    while (n >= 4u) {
        crc ^= *w++; /* little-endian: byte 0 is the low byte */
        crc = table[3][crc & 0xFFu] ^ table[2][(crc >> 8) & 0xFFu] ^
              table[1][(crc >> 16) & 0xFFu] ^ table[0][crc >> 24];
        n -= 4u;
    }
    p = (const uint8_t *)w;
    while (n > 0u) {
        crc = table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
        n--;
    }
    return crc;
}
