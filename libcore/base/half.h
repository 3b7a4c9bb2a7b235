// half.h: bf16 and IEEE half <-> float32 conversions, inline (used by loaders, the CPU kernels
// and the CPU twins of the CUDA kernels; kernels/common.cuh has the device versions).
#ifndef HASS_HALF_H
#define HASS_HALF_H

#include <stdint.h>
#include <string.h>

// bf16 bits -> float (exact).
static inline float hass_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// float -> bf16 bits, round to nearest even; NaN -> quiet NaN with the sign kept
// (the same as CUDA's __float2bfloat16_rn).
static inline uint16_t hass_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

// IEEE half bits -> float (exact, subnormals included).
static inline float hass_f16_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000) << 16, ex = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (ex == 0) {
        if (m == 0) {
            u = s;
        } else { // subnormal: normalise
            ex = 127 - 15 + 1;
            while (!(m & 0x400)) {
                m <<= 1;
                ex--;
            }
            u = s | ex << 23 | (m & 0x3ff) << 13;
        }
    } else if (ex == 31) {
        u = s | 0x7f800000u | m << 13;
    } else {
        u = s | (ex + 127 - 15) << 23 | m << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// float -> IEEE half bits, round to nearest even (overflow -> inf).
static inline uint16_t hass_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t s = (u >> 16) & 0x8000, ex = (u >> 23) & 0xff, m = u & 0x7fffff;
    if (ex == 255) return (uint16_t)(s | 0x7c00 | (m ? 0x200 : 0));
    int e = (int)ex - 127 + 15;
    if (e >= 31) return (uint16_t)(s | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)s;
        m |= 0x800000;
        int shift = 14 - e;
        uint32_t half = 1u << (shift - 1), r = m & ((1u << shift) - 1), v = m >> shift;
        if (r > half || (r == half && (v & 1))) v++;
        return (uint16_t)(s | v);
    }
    uint32_t v = (uint32_t)e << 10 | m >> 13, r = m & 0x1fff;
    if (r > 0x1000 || (r == 0x1000 && (v & 1))) v++;
    return (uint16_t)(s | v);
}

#endif
