/* Private to the content analysis (analyze.c, ftype.c): sample sizes,
 * verdict thresholds and the byte helpers both halves use. */
#ifndef BW_GUARD_ANALYZE_INT_H
#define BW_GUARD_ANALYZE_INT_H

#include "analyze.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define UNIT 4096u               /* comparison block; also a page size */
#define EDGE (64u * 1024u)       /* head and tail sample */
#define MID_UNITS 48u            /* evenly spaced blocks between them */
#define TRAILER 1024u            /* last bytes checked for a format trailer */
#define TEXT_SCAN 4096u          /* bytes that decide "text" */

/* Verdict thresholds (analyze.h explains each flag; the unit test prints
 * the values measured on its cases with BW_TEST_VERBOSE=1). */
#define ENT_HI 7.2         /* near-random: 4 KiB of random bytes give 7.95 */
#define ENT_LO 6.8         /* above this the old bytes were dense already */
#define ENT_RISE 1.0       /* or a jump by this much */
#define MIN_ENT_BYTES 256  /* below this the estimate says too little */
#define MIN_STRIPE_BYTES 1024
#define STRIPE_RUNS 12     /* runs per block: 512-byte sectors give <= 4 */
#define EQ_SPLIT 8         /* equal bytes that end a run of differences */

/* ---- small helpers ----------------------------------------------------- */

static inline uint16_t an_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t an_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint16_t an_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline int has(const uint8_t *p, size_t n, size_t off, const void *lit,
               size_t len)
{
	return off <= n && len <= n - off && memcmp(p + off, lit, len) == 0;
}
/* lit must be a string literal: "" lit "" does not compile otherwise */
#define HAS(off, lit) has(p, n, (off), "" lit, sizeof("" lit) - 1)

static const uint8_t zeros[UNIT];

static inline int all_zero(const uint8_t *p, size_t n)
{
	while (n) {
		size_t k = n < UNIT ? n : UNIT;
		if (memcmp(p, zeros, k))
			return 0;
		p += k;
		n -= k;
	}
	return 1;
}

/* log2 without libm (the guard library does not link it): split off the
 * exponent, bring the mantissa into [sqrt(1/2), sqrt(2)) and sum the
 * atanh series, which converges to double precision in 10 terms there. */
static inline double lg2(double x)
{
	uint64_t b;
	double m;
	memcpy(&b, &x, sizeof b);
	int e = (int)((b >> 52) & 0x7ff) - 1023;
	b = (b & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
	memcpy(&m, &b, sizeof m);
	if (m > 1.4142135623730951) {
		m *= 0.5;
		e++;
	}
	double z = (m - 1.0) / (m + 1.0), z2 = z * z, t = z, s = 0.0;
	for (int k = 0; k < 11; k++) {
		s += t / (2 * k + 1);
		t *= z2;
	}
	return e + 2.0 * s * 1.4426950408889634; /* 1/ln 2 */
}

static inline double hist_entropy(const uint64_t *h, size_t k, uint64_t n)
{
	if (n == 0)
		return 0.0;
	double s = 0.0;
	for (size_t i = 0; i < k; i++)
		if (h[i])
			s += (double)h[i] * lg2((double)h[i]);
	double e = lg2((double)n) - s / (double)n;
	return e < 0.0 ? 0.0 : e;
}

/* The level that n bytes of ciphertext reach with room to spare: the
 * plug-in estimate of n random bytes is 7.17 at 256 (sd 0.05), 7.59 at
 * 512, so a fixed 7.2 is only fair from 512 bytes on. */
static inline double ent_hi(uint64_t n)
{
	if (n >= 512)
		return ENT_HI;
	double t = 8.0 - 300.0 / (double)n;
	return t < ENT_HI ? t : ENT_HI;
}

/* Stricter, for a new file judged alone: within 0.05 bit of what random
 * bytes give at this sample size (7.85 at 4 KiB, 7.95 at 320 KiB). */
static inline double ent_random(uint64_t n)
{
	double t = 7.95 - 400.0 / (double)n, h = ent_hi(n);
	return t > h ? t : h;
}

/* CRC-32 (PNG, zip) four bits at a time: a 16-entry constant table keeps
 * it thread-safe without an init step and fast enough for 64 KiB. */
static const uint32_t crc_nib[16] = {
	0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
	0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

static inline uint32_t crc32_calc(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		c = (c >> 4) ^ crc_nib[c & 15];
		c = (c >> 4) ^ crc_nib[c & 15];
	}
	return ~c;
}

#endif
