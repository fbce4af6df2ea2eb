/* Content analysis for the ransomware guard: file types from magic bytes,
 * entropy, base64/hex detection, and the sampled old-versus-new
 * comparison that yields the "destroyed by encryption" verdict.
 *
 * Why sampling works: ransomware must make the file unreadable cheaply,
 * so it either encrypts everything, or the head (where the magic and the
 * index live), or regular stripes or chunks of it.  All of these show in
 * the first 64 KiB plus a few dozen evenly spaced 4 KiB blocks plus the
 * last 64 KiB, and reading those costs the same for a 1 KiB and a 100 GiB
 * file.  Why compare with the old version rather than judge the new one
 * alone: a JPEG or a zip is as random as ciphertext; what gives
 * encryption away is what changed: the magic, a structure the format
 * guarantees, or the entropy of exactly the bytes that were rewritten. */
#include "analyze.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static uint16_t an_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t an_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint16_t an_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static int has(const uint8_t *p, size_t n, size_t off, const void *lit,
               size_t len)
{
	return off <= n && len <= n - off && memcmp(p + off, lit, len) == 0;
}
/* lit must be a string literal: "" lit "" does not compile otherwise */
#define HAS(off, lit) has(p, n, (off), "" lit, sizeof("" lit) - 1)

static const uint8_t zeros[UNIT];

static int all_zero(const uint8_t *p, size_t n)
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
static double lg2(double x)
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

static double hist_entropy(const uint64_t *h, size_t k, uint64_t n)
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

double bw_entropy(const uint8_t *p, size_t n)
{
	uint64_t h[256] = {0};
	for (size_t i = 0; i < n; i++)
		h[p[i]]++;
	double e = hist_entropy(h, 256, n);
	return e > 8.0 ? 8.0 : e;
}

/* The level that n bytes of ciphertext reach with room to spare: the
 * plug-in estimate of n random bytes is 7.17 at 256 (sd 0.05), 7.59 at
 * 512, so a fixed 7.2 is only fair from 512 bytes on. */
static double ent_hi(uint64_t n)
{
	if (n >= 512)
		return ENT_HI;
	double t = 8.0 - 300.0 / (double)n;
	return t < ENT_HI ? t : ENT_HI;
}

/* Stricter, for a new file judged alone: within 0.05 bit of what random
 * bytes give at this sample size (7.85 at 4 KiB, 7.95 at 320 KiB). */
static double ent_random(uint64_t n)
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

static uint32_t crc32_calc(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		c = (c >> 4) ^ crc_nib[c & 15];
		c = (c >> 4) ^ crc_nib[c & 15];
	}
	return ~c;
}

/* ---- text ---------------------------------------------------------------- */

/* Length of the strict UTF-8 sequence at p (no overlongs, surrogates or
 * code points past U+10FFFF): > 0 valid, 0 invalid, -1 cut off by the end
 * of the window but valid so far. */
static int utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xbf;
	int len;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		uint8_t b = p[i];
		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
			return 0;
	}
	return len;
}

static int utf16_text(const uint8_t *p, size_t n, int le)
{
	size_t units = n / 2, bad = 0;
	for (size_t i = 0; i < units; i++) {
		unsigned u = le ? an_le16(p + 2 * i) : an_be16(p + 2 * i);
		if (u >= 0xd800 && u <= 0xdbff) {
			if (i + 1 == units)
				break; /* cut off by the window */
			unsigned v = le ? an_le16(p + 2 * i + 2)
			                : an_be16(p + 2 * i + 2);
			if (v >= 0xdc00 && v <= 0xdfff)
				i++;
			else
				bad++;
		} else if ((u >= 0xdc00 && u <= 0xdfff) || u >= 0xfffe ||
		           (u < 0x20 && u != '\t' && u != '\n' && u != '\r'))
			bad++;
	}
	/* strict: random units after a chance BOM have ~3% bad ones */
	return bad * 256 <= units;
}

/* Text: no NUL, and either UTF-8 with at most 5% controls or invalid
 * bytes, or a single-byte code page (Latin-1, CP1252...) with at most 2%
 * controls and 40% high bytes.  Random bytes have 11% controls and a NUL
 * in every 256 bytes, so they fail both from a few hundred bytes on. */
static int is_text(const uint8_t *p, size_t n)
{
	size_t lim = n < TEXT_SCAN ? n : TEXT_SCAN, bad = 0, ctl = 0, high = 0;
	size_t i = 0;
	if (lim >= 2 && ((p[0] == 0xff && p[1] == 0xfe) ||
	                 (p[0] == 0xfe && p[1] == 0xff)))
		return utf16_text(p + 2, lim - 2, p[0] == 0xff);
	while (i < lim) {
		uint8_t c = p[i];
		if (c == 0)
			return 0;
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' &&
			     c != '\f' && c != '\v' && c != 0x1b) ||
			    c == 0x7f)
				ctl++;
			i++;
			continue;
		}
		high++;
		int k = utf8_seq(p + i, lim - i);
		if (k < 0)
			break;
		if (k == 0) {
			bad++;
			i++;
			continue;
		}
		if (c == 0xc2 && p[i + 1] < 0xa0)
			bad++; /* C1 control */
		high += (size_t)k - 1;
		i += (size_t)k;
	}
	return (ctl + bad) * 20 <= lim ||
	       (ctl * 50 <= lim && high * 10 <= lim * 4);
}

/* ---- OpenPGP ------------------------------------------------------------- */

static int pgp_sym_ok(uint8_t a)
{
	return (a >= 1 && a <= 4) || (a >= 7 && a <= 13);
}

static int pgp_pk_ok(uint8_t a)
{
	return (a >= 1 && a <= 3) || (a >= 16 && a <= 20) || a == 22 ||
	       (a >= 25 && a <= 28);
}

static int pgp_hash_ok(uint8_t a)
{
	return (a >= 1 && a <= 3) || (a >= 8 && a <= 12) || a == 14;
}

static int pgp_sigtype_ok(uint8_t t)
{
	return t <= 0x02 || (t >= 0x10 && t <= 0x13) || t == 0x18 ||
	       t == 0x19 || t == 0x1f || t == 0x20 || t == 0x28 || t == 0x30 ||
	       t == 0x40 || t == 0x50;
}

/* The first block header of a deflate stream p[0..n) that is part of an
 * input of total bytes.  Real compressors start a stream of any size
 * with a dynamic-Huffman block, whose code-length code must be complete
 * (zlib rejects it otherwise): random bytes pass about once in 3,000.
 * Fixed-Huffman blocks only start tiny streams. */
struct bits {
	const uint8_t *p;
	size_t pos; /* in bits; the caller ensures there are enough */
};

static unsigned bits_get(struct bits *b, unsigned k)
{
	unsigned v = 0;
	for (unsigned j = 0; j < k; j++, b->pos++)
		v |= (unsigned)((b->p[b->pos / 8] >> (b->pos % 8)) & 1) << j;
	return v;
}

static int deflate_ok(const uint8_t *p, size_t n, size_t total)
{
	static const uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
	                                  11, 4,  12, 3, 13, 2, 14, 1, 15};
	uint8_t lens[19] = {0};
	struct bits b = {p, 0};
	if (n == 0)
		return 0;
	unsigned type = bits_get(&b, 3) >> 1;
	if (type == 1)
		return total < 512;
	if (type != 2 || n < 10) /* 3 + 14 + 19 * 3 bits */
		return 0;
	unsigned hlit = bits_get(&b, 5), hdist = bits_get(&b, 5),
	         hclen = bits_get(&b, 4) + 4;
	if (hlit > 29 || hdist > 29)
		return 0;
	for (unsigned i = 0; i < hclen; i++)
		lens[order[i]] = (uint8_t)bits_get(&b, 3);
	unsigned kraft = 0;
	for (int i = 0; i < 19; i++)
		if (lens[i])
			kraft += 128u >> lens[i];
	return kraft == 128;
}

/* The start of a v4 key's material at k: the algorithm, then an MPI
 * (bit count, and a first byte whose top bit matches it) or a curve OID
 * (length, first byte).  Random bytes pass one time in a few hundred. */
static int pgp_key_material(const uint8_t *k)
{
	if (k[0] == 18 || k[0] == 19 || k[0] == 22)
		return (k[1] == 5 || (k[1] >= 8 && k[1] <= 10)) &&
		       (k[2] == 0x2b || k[2] == 0x2a);
	if ((k[0] >= 1 && k[0] <= 3) || k[0] == 16 || k[0] == 17 || k[0] == 20) {
		unsigned bits = an_be16(k + 1);
		return bits >= 512 && bits <= 16384 &&
		       (k[3] >> ((bits - 1) % 8)) == 1;
	}
	return 0;
}

/* The first packet of an OpenPGP file as gpg writes it: encrypted
 * (PKESK, SKESK), signed, compressed, or a key.  The version and
 * algorithm fields are checked so that random bytes (any first byte with
 * the top bit set) are taken for OpenPGP about once in 10^5. */
static int pgp_packet(const uint8_t *p, size_t n)
{
	unsigned tag;
	size_t hl;
	if (n < 12 || !(p[0] & 0x80))
		return 0;
	if (p[0] & 0x40) {
		tag = p[0] & 0x3f;
		hl = p[1] < 192 ? 2 : p[1] < 224 ? 3 : p[1] == 255 ? 6 : 0;
		if (!hl)
			return 0; /* partial length: not a first packet */
	} else {
		static const size_t lens[4] = {2, 3, 5, 1};
		tag = (p[0] >> 2) & 0x0f;
		hl = lens[p[0] & 3];
	}
	/* the most any case below reads: 9 bytes after the header */
	if (n < hl + 10)
		return 0;
	const uint8_t *b = p + hl;
	switch (tag) {
	case 1: /* public-key encrypted session key, v3: id, algorithm */
		return b[0] == 3 && pgp_pk_ok(b[9]);
	case 2: /* signature */
		if (b[0] == 4 || b[0] == 5 || b[0] == 6)
			return pgp_sigtype_ok(b[1]) && pgp_pk_ok(b[2]) &&
			       pgp_hash_ok(b[3]);
		return b[0] == 3 && b[1] == 5 && pgp_sigtype_ok(b[2]);
	case 3: /* symmetric-key encrypted session key */
		if (b[0] == 4)
			return pgp_sym_ok(b[1]) && b[2] <= 4 && b[2] != 2 &&
			       pgp_hash_ok(b[3]);
		if (b[0] == 5)
			return pgp_sym_ok(b[1]) && b[2] >= 1 && b[2] <= 3;
		if (b[0] == 6)
			return pgp_sym_ok(b[2]) && b[3] >= 1 && b[3] <= 3;
		return 0;
	case 4: /* one-pass signature */
		return (b[0] == 3 || b[0] == 6) && pgp_sigtype_ok(b[1]) &&
		       pgp_hash_ok(b[2]) && pgp_pk_ok(b[3]);
	case 5: /* secret key */
	case 6: /* public key (a keyring): v4, time, algorithm, then its
	         * first field must be consistent with the algorithm */
		return b[0] == 4 && pgp_key_material(b + 5);
	case 8: /* compressed data, as gpg writes it (indeterminate length) */
		if (p[0] != 0xa3 && p[0] != 0xc8)
			return 0;
		if (b[0] == 1) /* raw deflate */
			return deflate_ok(b + 1, n - hl - 1, n);
		if (b[0] == 2) /* zlib */
			return (b[1] & 0x0f) == 8 && (b[1] << 8 | b[2]) % 31 == 0 &&
			       deflate_ok(b + 3, n - hl - 3, n);
		return b[0] == 3 && !memcmp(b + 1, "BZh", 3);
	default:
		return 0;
	}
}

/* ---- other magics with checked fields ------------------------------ */

static int tar_header(const uint8_t *p, size_t n)
{
	if (n < 512 || memcmp(p + 257, "ustar", 5) ||
	    (p[262] != 0 && p[262] != ' '))
		return 0;
	uint32_t want = 0, sum = 0;
	size_t i = 148;
	while (i < 156 && p[i] == ' ')
		i++;
	size_t digits = 0;
	for (; i < 156 && p[i] >= '0' && p[i] <= '7'; i++, digits++)
		want = want * 8 + (uint32_t)(p[i] - '0');
	if (!digits)
		return 0;
	for (i = 0; i < 512; i++)
		sum += (i >= 148 && i < 156) ? ' ' : p[i];
	return sum == want;
}

static int pg_page(const uint8_t *p, size_t n)
{
	if (n < 24)
		return 0;
	unsigned flags = an_le16(p + 10), lower = an_le16(p + 12),
	         upper = an_le16(p + 14), special = an_le16(p + 16),
	         psv = an_le16(p + 18), size = psv & 0xff00;
	return (psv & 0xff) == 4 && size >= 1024 && (size & (size - 1)) == 0 &&
	       flags <= 7 && lower >= 24 && lower <= upper &&
	       upper <= special && special <= size;
}

static int mp4_box(const uint8_t *p, size_t n)
{
	static const char *const boxes[] = {"moov", "mdat", "free", "skip",
	                                    "wide", "pnot"};
	if (n < 12 || p[0] != 0)
		return 0;
	uint32_t size = an_be32(p);
	if (HAS(4, "ftyp")) {
		for (int i = 8; i < 12; i++)
			if (p[i] < 0x20 || p[i] > 0x7e)
				return 0;
		return size >= 12 && size <= 4096;
	}
	for (size_t i = 0; i < sizeof boxes / sizeof *boxes; i++)
		if (has(p, n, 4, boxes[i], 4) && (size >= 8 || size == 1))
			return 1;
	return 0;
}

static int riff(const uint8_t *p, size_t n)
{
	if (!HAS(0, "RIFF") || n < 12)
		return 0;
	for (int i = 8; i < 12; i++) {
		uint8_t c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == ' '))
			return 0;
	}
	return 1;
}

static int bmp(const uint8_t *p, size_t n)
{
	if (!HAS(0, "BM") || n < 18 || get_le32(p + 6) != 0)
		return 0;
	uint32_t off = get_le32(p + 10), dib = get_le32(p + 14);
	return off >= 26 && off <= (1u << 20) &&
	       (dib == 12 || dib == 40 || dib == 52 || dib == 56 ||
	        dib == 64 || dib == 108 || dib == 124);
}

static int pe_exe(const uint8_t *p, size_t n)
{
	if (!HAS(0, "MZ") || n < 64)
		return 0;
	uint32_t off = get_le32(p + 0x3c);
	return off >= 4 && has(p, n, off, "PE\0\0", 4);
}

static int id3(const uint8_t *p, size_t n)
{
	return HAS(0, "ID3") && n >= 10 && p[3] >= 2 && p[3] <= 4 &&
	       p[4] != 0xff && (p[5] & 0x0f) == 0 && p[6] < 0x80 &&
	       p[7] < 0x80 && p[8] < 0x80 && p[9] < 0x80;
}

/* A PEM block: "-----BEGIN " LABEL "-----" on the first line. */
static int pem(const uint8_t *p, size_t n)
{
	if (!HAS(0, "-----BEGIN "))
		return 0;
	for (size_t i = 11; i < n && i < 80; i++) {
		uint8_t c = p[i];
		if (c == '-')
			return i > 11 && has(p, n, i, "-----", 5);
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ' '))
			return 0;
	}
	return 0;
}

enum bw_ftype bw_ftype_detect(const uint8_t *p, size_t n)
{
	if (!p || n == 0)
		return BW_FT_EMPTY;
	if (n > EDGE)
		n = EDGE;
	if (HAS(0, "%PDF-"))
		return BW_FT_PDF;
	if (HAS(0, "PK\3\4") || HAS(0, "PK\5\6") || HAS(0, "PK\7\x08"))
		return BW_FT_ZIP;
	if (HAS(0, "\xff\xd8\xff"))
		return BW_FT_JPEG;
	if (HAS(0, "\x89PNG\r\n\x1a\n"))
		return BW_FT_PNG;
	if (HAS(0, "GIF87a") || HAS(0, "GIF89a"))
		return BW_FT_GIF;
	if (HAS(0, "SQLite format 3\0"))
		return BW_FT_SQLITE;
	if (HAS(0, "\x7f" "ELF"))
		return BW_FT_ELF;
	if (HAS(0, "\x1f\x8b\x08"))
		return BW_FT_GZIP;
	if (HAS(0, "\x28\xb5\x2f\xfd") ||
	    (n >= 4 && (p[0] & 0xf0) == 0x50 && HAS(1, "\x2a\x4d\x18")))
		return BW_FT_ZSTD;
	if (HAS(0, "\xfd" "7zXZ\0"))
		return BW_FT_XZ;
	if (HAS(0, "BZh") && n >= 10 && p[3] >= '1' && p[3] <= '9' &&
	    (HAS(4, "\x31\x41\x59\x26\x53\x59") ||
	     HAS(4, "\x17\x72\x45\x38\x50\x90")))
		return BW_FT_BZIP2;
	if (HAS(0, "7z\xbc\xaf\x27\x1c"))
		return BW_FT_7Z;
	if (HAS(0, "Rar!\x1a\x07\0") || HAS(0, "Rar!\x1a\x07\x01\0"))
		return BW_FT_RAR;
	if (HAS(0, "age-encryption.org/v1\n") ||
	    HAS(0, "-----BEGIN AGE ENCRYPTED FILE-----"))
		return BW_FT_AGE;
	if (HAS(0, "-----BEGIN PGP "))
		return BW_FT_GPG;
	if (HAS(0, "BORG_SEG"))
		return BW_FT_BORG;
	if (HAS(0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"))
		return BW_FT_OLE;
	if ((HAS(0, "\x04\x22\x4d\x18") && n >= 5 && (p[4] >> 6) == 1) ||
	    HAS(0, "\x02\x21\x4c\x18"))
		return BW_FT_LZ4;
	if (HAS(0, "PACK\0\0\0\x02") || HAS(0, "PACK\0\0\0\x03"))
		return BW_FT_GIT_PACK;
	if (HAS(0, "\x03\xd9\xa2\x9a") &&
	    (HAS(4, "\x67\xfb\x4b\xb5") || HAS(4, "\x66\xfb\x4b\xb5") ||
	     HAS(4, "\x65\xfb\x4b\xb5")))
		return BW_FT_KDBX;
	if (HAS(0, "II*\0") || HAS(0, "MM\0*") || HAS(0, "II+\0") ||
	    HAS(0, "MM\0+"))
		return BW_FT_TIFF;
	if (riff(p, n))
		return BW_FT_RIFF;
	if (HAS(0, "OggS\0"))
		return BW_FT_OGG;
	if (HAS(0, "fLaC") && n >= 5 && (p[4] & 0x7f) == 0)
		return BW_FT_FLAC;
	if (HAS(0, "\x1a\x45\xdf\xa3"))
		return BW_FT_MKV;
	if (id3(p, n))
		return BW_FT_MP3;
	if (HAS(0, "!BDN") && HAS(8, "SM"))
		return BW_FT_PST;
	if (HAS(0, "AC10") && n >= 7 && p[4] >= '0' && p[4] <= '3' &&
	    p[5] >= '0' && p[5] <= '9' && p[6] == 0)
		return BW_FT_DWG;
	if (HAS(0, "\0\1\0\0Standard Jet DB") ||
	    HAS(0, "\0\1\0\0Standard ACE DB"))
		return BW_FT_ACCESS;
	if (bmp(p, n))
		return BW_FT_BMP;
	if (pe_exe(p, n))
		return BW_FT_PE;
	if (mp4_box(p, n))
		return BW_FT_MP4;
	if (pgp_packet(p, n))
		return BW_FT_GPG;
	/* only what zlib writes (window 32 KiB, a checked first block): the
	 * 2-byte header alone would match one random file in 2,600 */
	if (n >= 3 && p[0] == 0x78 &&
	    (p[1] == 0x01 || p[1] == 0x5e || p[1] == 0x9c || p[1] == 0xda) &&
	    deflate_ok(p + 2, n - 2, n))
		return BW_FT_ZLIB;
	if (tar_header(p, n))
		return BW_FT_TAR;
	if (pg_page(p, n))
		return BW_FT_PG;
	if (pem(p, n))
		return BW_FT_PEM;
	if (is_text(p, n))
		return BW_FT_TEXT;
	return BW_FT_UNKNOWN;
}

static const char *const ftype_names[BW_FT_NTYPES] = {
	[BW_FT_EMPTY] = "empty",   [BW_FT_UNKNOWN] = "unknown",
	[BW_FT_TEXT] = "text",     [BW_FT_PDF] = "pdf",
	[BW_FT_ZIP] = "zip",       [BW_FT_JPEG] = "jpeg",
	[BW_FT_PNG] = "png",       [BW_FT_GIF] = "gif",
	[BW_FT_SQLITE] = "sqlite", [BW_FT_ELF] = "elf",
	[BW_FT_GZIP] = "gzip",     [BW_FT_ZSTD] = "zstd",
	[BW_FT_XZ] = "xz",         [BW_FT_BZIP2] = "bzip2",
	[BW_FT_7Z] = "7z",         [BW_FT_RAR] = "rar",
	[BW_FT_GPG] = "gpg",       [BW_FT_AGE] = "age",
	[BW_FT_BORG] = "borg",     [BW_FT_TAR] = "tar",
	[BW_FT_MP4] = "mp4",       [BW_FT_OLE] = "ole",
	[BW_FT_PG] = "postgres",   [BW_FT_LZ4] = "lz4",
	[BW_FT_ZLIB] = "zlib",     [BW_FT_GIT_PACK] = "git-pack",
	[BW_FT_PEM] = "pem",       [BW_FT_KDBX] = "kdbx",
	[BW_FT_PE] = "pe",         [BW_FT_TIFF] = "tiff",
	[BW_FT_BMP] = "bmp",       [BW_FT_RIFF] = "riff",
	[BW_FT_OGG] = "ogg",       [BW_FT_FLAC] = "flac",
	[BW_FT_MKV] = "mkv",       [BW_FT_MP3] = "mp3",
	[BW_FT_PST] = "pst",       [BW_FT_DWG] = "dwg",
	[BW_FT_ACCESS] = "access",
};

const char *bw_ftype_name(enum bw_ftype t)
{
	if ((unsigned)t >= BW_FT_NTYPES || !ftype_names[t])
		return "?";
	return ftype_names[t];
}

int bw_ftype_is_container(enum bw_ftype t)
{
	switch (t) {
	case BW_FT_ZIP: case BW_FT_GZIP: case BW_FT_ZSTD: case BW_FT_XZ:
	case BW_FT_BZIP2: case BW_FT_7Z: case BW_FT_RAR: case BW_FT_GPG:
	case BW_FT_AGE: case BW_FT_BORG: case BW_FT_TAR: case BW_FT_LZ4:
	case BW_FT_ZLIB: case BW_FT_GIT_PACK: case BW_FT_PEM: case BW_FT_KDBX:
		return 1;
	default:
		return 0;
	}
}

/* A type whose loss means the file was damaged: a recognised binary
 * format.  Text is not one: a text file becoming binary is judged by
 * entropy, since ciphertext has no magic to lose. */
static int ftype_known(enum bw_ftype t)
{
	return t != BW_FT_EMPTY && t != BW_FT_UNKNOWN && t != BW_FT_TEXT;
}

/* ---- format structure ------------------------------------------------------ */

/* Walk the PNG chunks in the head: IHDR first, names of four letters,
 * CRC of every chunk that lies wholly in the buffer. */
static int png_ok(const uint8_t *p, size_t n)
{
	size_t pos = 8;
	int first = 1;
	while (pos + 8 <= n) {
		uint32_t len = an_be32(p + pos);
		const uint8_t *type = p + pos + 4;
		if (len > 0x7fffffffu)
			return 0;
		for (int i = 0; i < 4; i++)
			if (!((type[i] >= 'A' && type[i] <= 'Z') ||
			      (type[i] >= 'a' && type[i] <= 'z')))
				return 0;
		if (first && (memcmp(type, "IHDR", 4) || len != 13))
			return 0;
		first = 0;
		if ((uint64_t)len + 12 > n - pos)
			break; /* continues past the head: cannot check */
		if (crc32_calc(type, (size_t)len + 4) !=
		    an_be32(p + pos + 8 + len))
			return 0;
		if (!memcmp(type, "IEND", 4))
			break;
		pos += (size_t)len + 12;
	}
	return !first || n < 16;
}

/* Walk the JPEG marker segments from SOI to the first SOS.  Returns 1 if
 * the chain is sound as far as the buffer goes, 0 if not; *scan is where
 * entropy-coded data starts (n if not reached). */
static int jpeg_walk(const uint8_t *p, size_t n, size_t *scan)
{
	size_t pos = 2;
	*scan = n;
	for (;;) {
		if (pos >= n)
			return 1;
		if (p[pos] != 0xff)
			return 0;
		while (pos < n && p[pos] == 0xff)
			pos++; /* fill bytes */
		if (pos >= n)
			return 1;
		uint8_t m = p[pos++];
		if (m == 0x00 || m == 0xd8)
			return 0;
		if (m == 0x01 || (m >= 0xd0 && m <= 0xd7))
			continue;
		if (m == 0xd9) {
			*scan = pos;
			return 1;
		}
		if (pos + 2 > n)
			return 1;
		size_t len = an_be16(p + pos);
		if (len < 2)
			return 0;
		if (m == 0xda) {
			*scan = pos + len < n ? pos + len : n;
			return 1;
		}
		pos += len;
	}
}

/* SQLite's header fields that have fixed or few legal values. */
static int sqlite_ok(const uint8_t *p, size_t n)
{
	if (n < 100)
		return 0;
	unsigned ps = an_be16(p + 16);
	if (!(ps == 1 || (ps >= 512 && (ps & (ps - 1)) == 0)))
		return 0;
	if (p[18] < 1 || p[18] > 2 || p[19] < 1 || p[19] > 2 || p[21] != 64 ||
	    p[22] != 32 || p[23] != 32)
		return 0;
	if (an_be32(p + 44) > 4 || an_be32(p + 56) > 3)
		return 0;
	return all_zero(p + 72, 20);
}

/* The first local file header: version, reserved flag bits, a known
 * method, and a file name of printable bytes. */
static int zip_ok(const uint8_t *p, size_t n)
{
	if (!HAS(0, "PK\3\4"))
		return HAS(0, "PK\5\6") ? 1 : -1;
	if (n < 30)
		return 0;
	unsigned ver = an_le16(p + 4), flags = an_le16(p + 6),
	         method = an_le16(p + 8), name = an_le16(p + 26);
	if ((ver & 0xff) > 63 || (flags & 0xd780) ||
	    !(method <= 20 || (method >= 93 && method <= 99)) || name == 0 ||
	    name > 4096)
		return 0;
	for (size_t i = 30; i < 30 + (size_t)name && i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	return 1;
}

static int ole_ok(const uint8_t *p, size_t n)
{
	if (n < 34)
		return 0;
	unsigned major = an_le16(p + 26), shift = an_le16(p + 30);
	return (major == 3 || major == 4) && has(p, n, 28, "\xfe\xff", 2) &&
	       (shift == 9 || shift == 12) && an_le16(p + 32) == 6;
}

static int elf_ok(const uint8_t *p, size_t n)
{
	if (n < 24 || p[4] < 1 || p[4] > 2 || p[5] < 1 || p[5] > 2 || p[6] != 1)
		return 0;
	uint32_t v = p[5] == 1 ? get_le32(p + 20) : an_be32(p + 20);
	return v == 1;
}

/* 1 sound, 0 broken, -1 no check for this type. */
static int head_ok(enum bw_ftype t, const uint8_t *p, size_t n)
{
	size_t scan;
	switch (t) {
	case BW_FT_PNG: return png_ok(p, n);
	case BW_FT_JPEG: return jpeg_walk(p, n, &scan);
	case BW_FT_SQLITE: return sqlite_ok(p, n);
	case BW_FT_ZIP: return zip_ok(p, n);
	case BW_FT_OLE: return ole_ok(p, n);
	case BW_FT_ELF: return elf_ok(p, n);
	default: return -1;
	}
}

/* The format's end marker in the last bytes: 1 found, 0 not, -1 n/a. */
static int tail_ok(enum bw_ftype t, const uint8_t *p, size_t n)
{
	switch (t) {
	case BW_FT_JPEG: return memmem(p, n, "\xff\xd9", 2) != NULL;
	case BW_FT_PNG: return memmem(p, n, "IEND\xae\x42\x60\x82", 8) != NULL;
	case BW_FT_PDF: return memmem(p, n, "%%EOF", 5) != NULL;
	case BW_FT_ZIP: return memmem(p, n, "PK\5\6", 4) != NULL;
	default: return -1;
	}
}

/* In JPEG scan data every 0xFF is followed by 0x00 (stuffing), a restart
 * or another marker (>= 0xC0); random bytes break this after 3 of 4 of
 * their 0xFFs, i.e. ~12 times per 4 KiB. */
static uint32_t jpeg_bad_ff(const uint8_t *p, size_t n, uint64_t off,
                            uint64_t start)
{
	uint32_t bad = 0;
	size_t i = start > off ? (size_t)(start - off < n ? start - off : n) : 0;
	for (; i + 1 < n; i++)
		if (p[i] == 0xff && p[i + 1] >= 0x01 && p[i + 1] <= 0xbf)
			bad++;
	return bad;
}

/* Whether a block shows the format's own syntax: PDF object keywords,
 * zip record signatures, tar header magic.  These recur through such
 * files between the compressed parts, and random bytes hold them about
 * once in 4,000 blocks.  A rewrite by a real tool keeps some in the
 * blocks it rewrote; ransomware encrypting whole chunks removes all. */
static int has_syntax(enum bw_ftype t, const uint8_t *p, size_t n)
{
	switch (t) {
	case BW_FT_PDF:
		return memmem(p, n, "obj", 3) != NULL;
	case BW_FT_TAR:
		return memmem(p, n, "ustar", 5) != NULL;
	case BW_FT_ZIP:
		for (const uint8_t *q = p;
		     (q = memmem(q, n - (size_t)(q - p), "PK", 2)) != NULL; q++) {
			size_t left = n - (size_t)(q - p);
			if (left >= 4 && (q[2] & 1) && q[2] <= 7 &&
			    q[3] == q[2] + 1)
				return 1;
			if (left < 4)
				break;
		}
		return 0;
	default:
		return 0;
	}
}

static int syntax_type(enum bw_ftype t)
{
	return t == BW_FT_PDF || t == BW_FT_TAR || t == BW_FT_ZIP;
}

/* ---- base64 / hex ------------------------------------------------------- */

static int b64_sym(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

static int hex_sym(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Encoded random data uses its alphabet evenly: base64 of random bytes
 * gives 5.99 bits per symbol at 4 KiB, 5.81 at 256 and 5.18 at 64 (sd
 * 0.1), about 6 - 45/n; hex gives 4 - 11/n.  English letters give 3.9 to
 * 4.3 and decimal digits at most 3.32.  The thresholds sit 0.5 (base64)
 * and 0.35 (hex) below the expected value: > 4 sd at 64 symbols, more
 * above, and capped where the gap to text is widest. */
static double b64_min_entropy(uint64_t n)
{
	double t = 6.0 - 45.4 / (double)n - 0.5;
	return t < 5.5 ? t : 5.5;
}

static double hex_min_entropy(uint64_t n)
{
	double t = 4.0 - 10.8 / (double)n - 0.35;
	return t < 3.8 ? t : 3.8;
}

int bw_looks_base64(const uint8_t *p, size_t n)
{
	uint64_t hb[64] = {0}, hh[16] = {0};
	uint64_t nb = 0, nh = 0, nl = 0, sp = 0, eq = 0;
	if (!p || n < 64)
		return 0;
	if (n > EDGE)
		n = EDGE;
	/* Bytes foreign to each alphabet; once both exceed 2% the answer is
	 * no, which for text and binary data is clear within 64 bytes or so:
	 * this runs on every rewritten block, twice. */
	uint64_t junk_b = 0, junk_h = 0, lim = n / 50;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		int s = b64_sym(c), h = hex_sym(c);
		if (s >= 0) {
			hb[s]++;
			nb++;
		}
		if (h >= 0) {
			hh[h]++;
			nh++;
		}
		if (c == '\n' || c == '\r')
			nl++;
		else if (c == ' ' || c == '\t') {
			sp++;
			junk_b++;
		} else if (c == '=') {
			eq++;
			junk_h++;
		} else {
			junk_b += s < 0;
			junk_h += h < 0;
		}
		if ((i & 63) == 63 && junk_b > lim && junk_h > lim)
			return 0;
	}
	/* base64: <= 2% other bytes, line breaks at most every 8 symbols,
	 * '=' only as padding */
	if (nb >= 64 && (n - nb - nl - eq) * 50 <= n && nl * 8 <= n &&
	    eq * 20 <= n &&
	    hist_entropy(hb, 64, nb) >= b64_min_entropy(nb))
		return 1;
	/* hex: spaces allowed between bytes ("de ad be ef") */
	if (nh >= 64 && (n - nh - nl - sp) * 50 <= n && (nl + sp) * 2 <= n &&
	    hist_entropy(hh, 16, nh) >= hex_min_entropy(nh))
		return 1;
	return 0;
}

/* ---- sampling ------------------------------------------------------------- */

/* Bytes of one version: a descriptor or a buffer. */
struct src {
	int fd;
	const uint8_t *mem;
	uint64_t size;
	uint64_t *bytes_read;
};

/* Read up to len bytes at off; *got is short only at EOF (also when the
 * file shrank under us: we compare what is there). */
static int src_read(const struct src *s, uint64_t off, uint8_t *buf,
                    size_t len, size_t *got)
{
	*got = 0;
	if (off >= s->size)
		return 0;
	if (len > s->size - off)
		len = (size_t)(s->size - off);
	if (s->fd < 0) {
		memcpy(buf, s->mem + off, len);
		*got = len;
	} else {
		while (*got < len) {
			ssize_t r = pread(s->fd, buf + *got, len - *got,
			                  (off_t)(off + *got));
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return bw_from_errno(errno);
			}
			if (r == 0)
				break;
			*got += (size_t)r;
		}
	}
	*s->bytes_read += *got;
	return 0;
}

/* Where the samples of a length L lie: [0, head) whole, nmid blocks
 * between, [tail, L) whole; tail is 4 KiB aligned so that blocks line up
 * with database pages and with the chunks ransomware encrypts. */
struct plan {
	uint64_t len, head, tail;
	uint64_t mid_first, mid_span; /* in blocks */
	uint32_t nmid;
};

static void plan_make(struct plan *pl, uint64_t len)
{
	memset(pl, 0, sizeof *pl);
	pl->len = len;
	pl->head = len < EDGE ? len : EDGE;
	pl->tail = len;
	if (len <= EDGE)
		return;
	uint64_t t = (len - EDGE) / UNIT * UNIT;
	pl->tail = t > pl->head ? t : pl->head;
	pl->mid_first = pl->head / UNIT;
	pl->mid_span = (pl->tail - pl->head) / UNIT;
	pl->nmid = pl->mid_span < MID_UNITS ? (uint32_t)pl->mid_span : MID_UNITS;
}

/* Offset of middle block i: the centres of nmid equal slices. */
static uint64_t plan_mid(const struct plan *pl, uint32_t i)
{
	uint64_t k = ((uint64_t)2 * i + 1) * pl->mid_span / (2 * pl->nmid);
	return (pl->mid_first + k) * UNIT;
}

struct acc {
	uint64_t ho[256], hn[256];   /* rewritten blocks, old and new */
	uint64_t he[256];            /* ... their bytes that stayed equal */
	uint64_t rw_bytes, diff, runs, ff_old, ff_new;
	uint32_t compared, changed, shifted, filled, zeroed, rewritten;
	uint32_t eligible, enc_new, enc_old;
	uint32_t syn_old, syn_new;   /* rewritten blocks showing syntax */
};

/* Everything one analysis needs, in one allocation. */
struct ctx {
	struct src old, cur;
	int64_t delta;            /* new size - old size */
	int jpeg;                 /* count JPEG stuffing errors */
	enum bw_ftype syn;        /* count syntax of this type, or EMPTY */
	uint64_t scan_old, scan_new;
	struct acc a;
	/* buffers last: only what precedes them is zeroed */
	uint8_t bo[EDGE + UNIT], bn[EDGE + UNIT], bs[UNIT];
};

static struct ctx *ctx_new(void)
{
	struct ctx *c = malloc(sizeof *c);
	if (c)
		memset(c, 0, offsetof(struct ctx, bo));
	return c;
}

static int block_cmp(struct ctx *c, uint64_t off, const uint8_t *o,
                     const uint8_t *n, size_t len)
{
	struct acc *a = &c->a;
	a->compared++;
	if (!memcmp(o, n, len))
		return 0;
	/* After an insertion or deletion the old bytes sit delta further on:
	 * an edited text must not look rewritten from the edit to EOF. */
	if (c->delta) {
		int64_t o2 = (int64_t)off + c->delta;
		if (o2 >= 0 && (uint64_t)o2 + len <= c->cur.size) {
			size_t got;
			int r = src_read(&c->cur, (uint64_t)o2, c->bs, len, &got);
			if (r)
				return r;
			if (got == len && !memcmp(o, c->bs, len)) {
				a->shifted++;
				return 0;
			}
		}
	}
	a->changed++;
	if (all_zero(o, len)) {
		a->filled++;
		return 0;
	}
	if (all_zero(n, len)) {
		a->zeroed++;
		return 0;
	}
	a->rewritten++;
	a->rw_bytes += len;
	/* The histogram of the differing bytes is the block's minus that of
	 * the equal ones, which are few: one increment less per byte. */
	size_t eq = EQ_SPLIT, same = 0, runs = 0; /* locals: a->... may alias */
	uint64_t *ho = a->ho, *hn = a->hn, *he = a->he;
	for (size_t i = 0; i < len; i++) {
		uint8_t x = o[i], y = n[i];
		ho[x]++;
		hn[y]++;
		if (x == y) {
			he[x]++;
			same++;
			eq++;
		} else {
			runs += eq >= EQ_SPLIT;
			eq = 0;
		}
	}
	a->diff += len - same;
	a->runs += runs;
	if (len >= 64) {
		a->eligible++;
		a->enc_new += (uint32_t)bw_looks_base64(n, len);
		a->enc_old += (uint32_t)bw_looks_base64(o, len);
	}
	if (c->jpeg) {
		a->ff_old += jpeg_bad_ff(o, len, off, c->scan_old);
		a->ff_new += jpeg_bad_ff(n, len, off, c->scan_new);
	}
	if (c->syn != BW_FT_EMPTY) {
		a->syn_old += (uint32_t)has_syntax(c->syn, o, len);
		a->syn_new += (uint32_t)has_syntax(c->syn, n, len);
	}
	return 0;
}

/* Compare [from, to) of both versions, already in bo/bn at offset base. */
static int range_cmp(struct ctx *c, uint64_t base, uint64_t from, uint64_t to)
{
	for (uint64_t off = from; off < to; off += UNIT) {
		size_t len = (size_t)(to - off < UNIT ? to - off : UNIT);
		int r = block_cmp(c, off, c->bo + (off - base),
		                  c->bn + (off - base), len);
		if (r)
			return r;
	}
	return 0;
}

/* Only the new version: histogram and encoding of its samples, for a new
 * file.  The head is already in bn (nhead bytes). */
static int sample_new_only(struct ctx *c, size_t nhead)
{
	struct acc *a = &c->a;
	struct plan pl;
	size_t got;
	int r;
	plan_make(&pl, c->cur.size);
	for (size_t off = 0; off < nhead; off += UNIT) {
		size_t len = nhead - off < UNIT ? nhead - off : UNIT;
		for (size_t k = 0; k < len; k++)
			a->hn[c->bn[off + k]]++;
		a->rw_bytes += len;
		if (len >= 64) {
			a->eligible++;
			a->enc_new += (uint32_t)bw_looks_base64(c->bn + off, len);
		}
	}
	/* middle and tail */
	for (uint32_t i = 0; i <= pl.nmid; i++) {
		uint64_t off = i < pl.nmid ? plan_mid(&pl, i) : pl.tail;
		size_t want = i < pl.nmid ? UNIT : (size_t)(pl.len - pl.tail);
		if (!want || off < nhead)
			continue;
		r = src_read(&c->cur, off, c->bn, want, &got);
		if (r)
			return r;
		for (size_t b = 0; b < got; b += UNIT) {
			size_t len = got - b < UNIT ? got - b : UNIT;
			for (size_t k = 0; k < len; k++)
				a->hn[c->bn[b + k]]++;
			a->rw_bytes += len;
			if (len >= 64) {
				a->eligible++;
				a->enc_new += (uint32_t)bw_looks_base64(c->bn + b,
				                                        len);
			}
		}
	}
	return 0;
}

static int src_init(struct src *s, int fd, const uint8_t *mem, uint64_t len,
                    uint64_t *counter)
{
	s->fd = fd;
	s->mem = mem;
	s->size = len;
	s->bytes_read = counter;
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st))
			return bw_from_errno(errno);
		s->size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
	}
	return 0;
}

/* A zip's central directory lists every member with the offset of its
 * local header: check up to ZIP_PROBES of those headers, spread over the
 * directory, for their signature and name.  Members lie all through the
 * file, so this sees chunks encrypted anywhere, not only in the samples.
 * *res: 1 sound, 0 broken, -1 not checkable (zip64, a prefix, multiple
 * disks).  buf holds EDGE bytes.  Reads <= 1 KiB + 64 KiB + 64 * 542. */
#define ZIP_PROBES 64u
static int zip_directory(const struct src *s, uint8_t *buf, int *res)
{
	uint8_t lh[30 + 512];
	size_t got, tl = s->size < 22 + TRAILER ? (size_t)s->size : 22 + TRAILER;
	int r;
	*res = -1;
	if ((r = src_read(s, s->size - tl, buf, tl, &got)))
		return r;
	size_t e = got;
	while (e >= 22 && memcmp(buf + e - 22, "PK\5\6", 4))
		e--;
	if (e < 22)
		return 0; /* no end record: tail_ok() judged that */
	const uint8_t *eo = buf + e - 22;
	uint64_t eocd = s->size - tl + (e - 22);
	unsigned total = an_le16(eo + 10);
	uint32_t cd_size = get_le32(eo + 12), cd_off = get_le32(eo + 16);
	if (an_le16(eo + 4) || an_le16(eo + 6) || total == 0xffff ||
	    cd_off == 0xffffffffu || cd_size == 0xffffffffu)
		return 0;
	if ((uint64_t)cd_off + cd_size != eocd) {
		*res = 0; /* an offset that lies is damage, or a prefix */
		return 0;
	}
	size_t want = cd_size < EDGE ? cd_size : EDGE, lgot;
	if ((r = src_read(s, cd_off, buf, want, &got)))
		return r;
	unsigned step = total / ZIP_PROBES + 1, idx = 0;
	*res = 0;
	for (size_t pos = 0; idx < total && pos + 46 <= got; idx++) {
		const uint8_t *ce = buf + pos;
		if (memcmp(ce, "PK\1\2", 4))
			return 0;
		unsigned nl = an_le16(ce + 28);
		size_t next = pos + 46 + nl + an_le16(ce + 30) + an_le16(ce + 32);
		uint32_t lo = get_le32(ce + 42);
		if (idx % step == 0 && nl <= 512 && pos + 46 + nl <= got) {
			if ((r = src_read(s, lo, lh, 30 + nl, &lgot)))
				return r;
			if (lgot != 30 + nl || memcmp(lh, "PK\3\4", 4) ||
			    an_le16(lh + 26) != nl ||
			    memcmp(lh + 30, ce + 46, nl))
				return 0;
		}
		pos = next;
	}
	*res = 1;
	return 0;
}

static void verdict(struct ctx *c, struct bw_sample_cmp *out,
                    int new_head_zero, int head_broken)
{
	struct acc *a = &c->a;
	out->blocks_compared = a->compared;
	out->blocks_changed = a->changed;
	out->blocks_shifted = a->shifted;
	out->blocks_filled = a->filled;
	out->blocks_zeroed = a->zeroed;
	out->blocks_rewritten = a->rewritten;
	out->blocks_encoded = a->enc_new;
	out->diff_segments =
		a->runs > UINT32_MAX ? UINT32_MAX : (uint32_t)a->runs;
	out->diff_bytes = a->diff;
	out->old_entropy = hist_entropy(a->ho, 256, a->rw_bytes);
	out->new_entropy = hist_entropy(a->hn, 256, a->rw_bytes);
	uint64_t dho[256], dhn[256];
	for (int i = 0; i < 256; i++) {
		dho[i] = a->ho[i] - a->he[i];
		dhn[i] = a->hn[i] - a->he[i];
	}
	out->diff_old_entropy = hist_entropy(dho, 256, a->diff);
	out->diff_new_entropy = hist_entropy(dhn, 256, a->diff);
	out->changed_byte_frac =
		a->rw_bytes ? (double)a->diff / (double)a->rw_bytes : 0.0;

	double dn = out->diff_new_entropy, dl = out->diff_old_entropy;
	int random_new = a->diff >= MIN_ENT_BYTES && dn >= ent_hi(a->diff);
	int new_container = bw_ftype_is_container(out->new_type);

	out->magic_lost = ftype_known(out->old_type) &&
	                  out->new_type == BW_FT_UNKNOWN &&
	                  out->new_size >= 16 && !new_head_zero;
	out->entropy_up = random_new && (dl <= ENT_LO || dn - dl >= ENT_RISE);
	out->intermittent = random_new && a->diff >= MIN_STRIPE_BYTES &&
	                    out->changed_byte_frac >= 0.1 &&
	                    out->changed_byte_frac <= 0.9 &&
	                    a->runs >= (uint64_t)STRIPE_RUNS * a->rewritten;
	out->b64_camouflage =
		a->eligible > 0 &&
		(uint64_t)a->enc_new * 10 >= (uint64_t)a->eligible * 9 &&
		(uint64_t)a->enc_old * 10 <= a->eligible;
	out->format_broken = head_broken ||
	                     (c->jpeg && a->ff_new >= 8 &&
	                      a->ff_new > 4 * a->ff_old + 8) ||
	                     (random_new && a->syn_old >= 2 && a->syn_new == 0);
	out->container_new = new_container && out->new_type != out->old_type;
	out->wiped = out->old_size > 0 &&
	             (out->new_size == 0 || (a->zeroed > 0 && a->rewritten == 0));
	/* A container may legitimately change its entropy (a tar or zip
	 * re-created with other members); its magic and stripes still count. */
	out->suspicious = !out->container_new &&
	                  (out->magic_lost || out->format_broken ||
	                   out->b64_camouflage || out->intermittent ||
	                   (out->entropy_up && !new_container));
}

static int compare(struct ctx *c, struct bw_sample_cmp *out, int have_old)
{
	size_t ohead = 0, nhead = 0;
	int r;

	out->old_size = have_old ? c->old.size : 0;
	out->new_size = c->cur.size;
	r = src_read(&c->cur, 0, c->bn, EDGE, &nhead);
	if (r)
		return r;
	if (have_old) {
		r = src_read(&c->old, 0, c->bo, EDGE, &ohead);
		if (r)
			return r;
	}
	out->old_type = bw_ftype_detect(c->bo, ohead);
	out->new_type = bw_ftype_detect(c->bn, nhead);
	if (!have_old || c->old.size == 0) {
		r = sample_new_only(c, nhead);
		if (r)
			return r;
		out->new_entropy = hist_entropy(c->a.hn, 256, c->a.rw_bytes);
		return 0;
	}

	int broken = 0;
	if (out->old_type == out->new_type &&
	    head_ok(out->old_type, c->bo, ohead) == 1 &&
	    head_ok(out->new_type, c->bn, nhead) == 0)
		broken = 1;
	if (out->old_type == BW_FT_JPEG && out->new_type == BW_FT_JPEG) {
		size_t so, sn;
		c->jpeg = 1;
		(void)jpeg_walk(c->bo, ohead, &so);
		(void)jpeg_walk(c->bn, nhead, &sn);
		c->scan_old = so;
		c->scan_new = sn;
	}
	c->syn = out->old_type == out->new_type && syntax_type(out->old_type)
	                 ? out->old_type
	                 : BW_FT_EMPTY;
	int new_head_zero =
		nhead > 0 && all_zero(c->bn, nhead < UNIT ? nhead : UNIT);

	uint64_t len = c->old.size < c->cur.size ? c->old.size : c->cur.size;
	struct plan pl;
	c->delta = (int64_t)c->cur.size - (int64_t)c->old.size;
	plan_make(&pl, len);
	uint64_t hend = pl.head;
	if (hend > ohead)
		hend = ohead; /* a version shrank while we read */
	if (hend > nhead)
		hend = nhead;
	r = range_cmp(c, 0, 0, hend);
	if (r)
		return r;

	for (uint32_t i = 0; i < pl.nmid; i++) {
		uint64_t off = plan_mid(&pl, i);
		size_t go, gn;
		if ((r = src_read(&c->old, off, c->bo, UNIT, &go)) ||
		    (r = src_read(&c->cur, off, c->bn, UNIT, &gn)))
			return r;
		size_t n = go < gn ? go : gn;
		if (n && (r = block_cmp(c, off, c->bo, c->bn, n)))
			return r;
	}

	if (pl.tail < pl.len) {
		size_t want = (size_t)(pl.len - pl.tail), go, gn;
		if ((r = src_read(&c->old, pl.tail, c->bo, want, &go)) ||
		    (r = src_read(&c->cur, pl.tail, c->bn, want, &gn)))
			return r;
		size_t n = go < gn ? go : gn;
		if ((r = range_cmp(c, pl.tail, pl.tail, pl.tail + n)))
			return r;
	}

	/* The trailer at each version's own end: ransomware that appends its
	 * key blob or encrypts the tail removes it, editors keep it. */
	if (!broken && out->old_type == out->new_type &&
	    tail_ok(out->old_type, c->bo, 0) >= 0) {
		size_t to = c->old.size < TRAILER ? (size_t)c->old.size : TRAILER;
		size_t tn = c->cur.size < TRAILER ? (size_t)c->cur.size : TRAILER;
		size_t go, gn;
		if ((r = src_read(&c->old, c->old.size - to, c->bo, to, &go)) ||
		    (r = src_read(&c->cur, c->cur.size - tn, c->bn, tn, &gn)))
			return r;
		if (tail_ok(out->old_type, c->bo, go) == 1 &&
		    tail_ok(out->new_type, c->bn, gn) == 0)
			broken = 1;
	}
	if (!broken && out->old_type == BW_FT_ZIP && out->new_type == BW_FT_ZIP) {
		int zo, zn;
		if ((r = zip_directory(&c->old, c->bo, &zo)))
			return r;
		if (zo == 1 && (r = zip_directory(&c->cur, c->bn, &zn)))
			return r;
		if (zo == 1 && zn == 0)
			broken = 1;
	}
	verdict(c, out, new_head_zero, broken);
	return 0;
}

static int run(int old_fd, const uint8_t *old, size_t old_len, int have_old,
               int new_fd, const uint8_t *cur, size_t cur_len,
               struct bw_sample_cmp *out)
{
	struct ctx *c = ctx_new();
	int r;
	if (!c)
		return BW_ENOMEM;
	if ((r = src_init(&c->cur, new_fd, cur, cur_len, &out->bytes_read)))
		goto out;
	if (have_old &&
	    (r = src_init(&c->old, old_fd, old, old_len, &out->bytes_read)))
		goto out;
	r = compare(c, out, have_old);
out:
	free(c);
	return r;
}

int bw_sample_compare(int old_fd, int new_fd, struct bw_sample_cmp *out)
{
	if (!out)
		return BW_EINVAL;
	memset(out, 0, sizeof *out);
	if (new_fd < 0)
		return BW_EINVAL;
	return run(old_fd, NULL, 0, old_fd >= 0, new_fd, NULL, 0, out);
}

int bw_sample_compare_mem(const uint8_t *old, size_t old_len,
                          const uint8_t *new_, size_t new_len,
                          struct bw_sample_cmp *out)
{
	if (!out)
		return BW_EINVAL;
	memset(out, 0, sizeof *out);
	if ((!old && old_len) || (!new_ && new_len))
		return BW_EINVAL;
	return run(-1, old, old_len, old != NULL, -1, new_, new_len, out);
}

/* A new file alone: ciphertext-like if of no known type and within 0.05
 * bit of random over the samples, or text whose first block and >= 90%
 * of the others are base64/hex of random data. */
static int new_verdict(const uint8_t *p, size_t n, int fd)
{
	struct bw_sample_cmp out;
	struct ctx *c = ctx_new();
	int r;
	if (!c)
		return BW_ENOMEM;
	memset(&out, 0, sizeof out);
	if ((r = src_init(&c->cur, fd, p, n, &out.bytes_read)) ||
	    (r = compare(c, &out, 0)))
		goto out;
	struct acc *a = &c->a;
	if (out.new_type == BW_FT_UNKNOWN)
		r = a->rw_bytes >= MIN_ENT_BYTES &&
		    out.new_entropy >= ent_random(a->rw_bytes);
	else if (out.new_type == BW_FT_TEXT) {
		size_t first = c->cur.size < UNIT ? (size_t)c->cur.size : UNIT;
		size_t got;
		r = src_read(&c->cur, 0, c->bn, first, &got);
		if (r)
			goto out;
		r = a->eligible > 0 && bw_looks_base64(c->bn, got) &&
		    (uint64_t)a->enc_new * 10 >= (uint64_t)a->eligible * 9;
	} else
		r = 0;
out:
	free(c);
	return r;
}

int bw_new_file_ciphertext_like(int fd)
{
	if (fd < 0)
		return BW_EINVAL;
	return new_verdict(NULL, 0, fd);
}

int bw_new_mem_ciphertext_like(const uint8_t *p, size_t n)
{
	if (!p && n)
		return BW_EINVAL;
	return new_verdict(p, n, -1);
}
