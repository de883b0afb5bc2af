/* CRC-32 (IEEE, as zlib.crc32) of a buffer the program fills itself; result in r0. */
#include <stdint.h>

#define LEN 4096
static uint8_t buffer[LEN];

static uint32_t crc32(const uint8_t *p, uint32_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));
    }
    return ~crc;
}

uint32_t main(void)
{
    for (uint32_t i = 0; i < LEN; i++)
        buffer[i] = (uint8_t)(i * 7u + 3u);
    return crc32(buffer, LEN);
}
