/* crc32.c - table-driven CRC-32; the table is built on first use (it lives in loaded data,
 * so the loader image stays small and needs no start-up code). */
#include "crc32.h"

#include "chip.h"

QL_DATA static uint32_t table[256];
QL_DATA static uint32_t table_ready;

static void build_table(void)
{
    for (uint32_t i = 0; i < 256u; i++) {
        uint32_t c = i;
        for (uint32_t k = 0; k < 8u; k++) {
            c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
        }
        table[i] = c;
    }
    table_ready = 1u;
}

uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint32_t n)
{
    if (!table_ready) {
        build_table();
    }
    while (n--) {
        crc = table[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    }
    return crc;
}
