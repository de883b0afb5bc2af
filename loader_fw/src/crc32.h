/* crc32.h - CRC-32 (IEEE 802.3, reflected, as zlib.crc32 / binascii.crc32). */
#ifndef QL_CRC32_H
#define QL_CRC32_H

#include <stdint.h>

/* crc: running value, start with 0xFFFFFFFF; the final CRC is ~crc. */
uint32_t crc32_update(uint32_t crc, const uint8_t *p, uint32_t n);

#endif /* QL_CRC32_H */
