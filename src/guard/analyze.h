/* Content analysis for the ransomware guard: "does the file now look
 * like its old content was destroyed by encryption?"
 *
 * Pure functions over bytes or file descriptors; no fanotify, no global
 * state, safe to call from several threads at once.  Every entry point
 * reads a bounded amount (see bw_sample_compare) whatever the file size,
 * because the guard runs this on every FAN_CLOSE_WRITE of an untrusted
 * writer.  Evidence is returned as separate flags so that the caller can
 * weigh it together with behaviour (rate, extensions, renames). */
#ifndef BW_GUARD_ANALYZE_H
#define BW_GUARD_ANALYZE_H

#include <bulwark/core.h>

#include <stddef.h>
#include <stdint.h>

/* A file type recognised from its first bytes.  Values may be added
 * before BW_FT_NTYPES; code must not rely on the numbers. */
enum bw_ftype {
	BW_FT_EMPTY,     /* no bytes */
	BW_FT_UNKNOWN,   /* no known magic and not text: ciphertext looks so */
	BW_FT_TEXT,      /* UTF-8/ASCII, Latin-1, UTF-16 with BOM; printable */
	BW_FT_PDF,
	BW_FT_ZIP,       /* also docx/xlsx/odt/jar/apk */
	BW_FT_JPEG,
	BW_FT_PNG,
	BW_FT_GIF,
	BW_FT_SQLITE,
	BW_FT_ELF,
	BW_FT_GZIP,
	BW_FT_ZSTD,
	BW_FT_XZ,
	BW_FT_BZIP2,
	BW_FT_7Z,
	BW_FT_RAR,
	BW_FT_GPG,       /* OpenPGP packets (checked fields) or ASCII armor */
	BW_FT_AGE,       /* binary or armored */
	BW_FT_BORG,      /* borg segment file; restic has no magic: UNKNOWN */
	BW_FT_TAR,       /* ustar, header checksum verified */
	BW_FT_MP4,       /* ISO BMFF / QuickTime: mp4 mov m4a heic 3gp */
	BW_FT_OLE,       /* compound file: doc xls ppt msg msi */
	BW_FT_PG,        /* PostgreSQL relation page (header fields checked) */
	BW_FT_LZ4,
	BW_FT_ZLIB,      /* git loose objects: zlib's usual headers, the
	                  * first deflate block checked */
	BW_FT_GIT_PACK,
	BW_FT_PEM,       /* -----BEGIN ...----- other than PGP and age */
	BW_FT_KDBX,      /* KeePass database */
	BW_FT_PE,        /* Windows executable (MZ with a PE header) */
	BW_FT_TIFF,      /* also raw camera formats based on it */
	BW_FT_BMP,
	BW_FT_RIFF,      /* wav avi webp */
	BW_FT_OGG,
	BW_FT_FLAC,
	BW_FT_MKV,       /* Matroska / WebM */
	BW_FT_MP3,       /* with an ID3v2 tag */
	BW_FT_PST,       /* Outlook mail store */
	BW_FT_DWG,       /* AutoCAD drawing, R13 and later */
	BW_FT_ACCESS,    /* Microsoft Access (Jet/ACE) database */
	BW_FT_NTYPES
};

/* A short lower-case name ("jpeg", "7z"); never NULL, "?" if out of range. */
const char *bw_ftype_name(enum bw_ftype t);

/* The type of content whose first n bytes are p (p may be NULL if n is
 * 0).  Looks at no more than the first 64 KiB and decides text from the
 * first 4 KiB, so the head of a file is enough.  Binary magics are
 * checked with their neighbouring fields where those are cheap to check,
 * so that random bytes are almost never taken for a known type. */
enum bw_ftype bw_ftype_detect(const uint8_t *p, size_t n);

/* 1 if t is a compressed, encrypted or archive format that benign tools
 * produce (gzip zstd xz bzip2 lz4 zlib 7z rar zip tar gpg age borg
 * git-pack pem kdbx), else 0.  High entropy is expected of these. */
int bw_ftype_is_container(enum bw_ftype t);

/* Shannon entropy of the byte histogram of p[0..n), in bits per byte,
 * 0..8 (0 for n == 0).  The estimate is biased low for small n: n random
 * bytes give about 8 - 184/n for n >= 512 (7.95 at 4 KiB). */
double bw_entropy(const uint8_t *p, size_t n);

/* 1 if p[0..n) is (almost) only a base64 alphabet (standard or URL-safe,
 * with '=' padding and line breaks) or a hex alphabet (with spaces and
 * line breaks), AND the symbols are used about evenly, as in encoded
 * ciphertext or compressed data; else 0.  English text, CSV, source
 * code and JSON fail: they have spaces and punctuation, and their letters
 * are far from uniform.  Needs n >= 64; decides on the first 64 KiB. */
int bw_looks_base64(const uint8_t *p, size_t n);

/* The comparison of an old file version with the new one.  A "block" is
 * a 4 KiB unit at a 4 KiB-aligned offset below the smaller of the two
 * sizes.  Blocks that differ are split into: filled (old was all zeros,
 * e.g. a preallocated download being written), zeroed (new is all zeros)
 * and rewritten (both have data); entropy and encoding are measured over
 * the rewritten blocks only, because only those destroy data. */
struct bw_sample_cmp {
	enum bw_ftype old_type, new_type;
	uint64_t old_size, new_size;
	uint64_t bytes_read;        /* from both files together */
	uint32_t blocks_compared;   /* sampled blocks present in both */
	uint32_t blocks_changed;    /* ... differing at the same offset and,
	                             * when the size changed, also at the
	                             * offset shifted by the size change */
	uint32_t blocks_shifted;    /* differed in place, equal when shifted
	                             * by the size change (an insertion or a
	                             * deletion before them): not changed */
	uint32_t blocks_filled;     /* changed, old all zeros */
	uint32_t blocks_zeroed;     /* changed, new all zeros */
	uint32_t blocks_rewritten;  /* changed, neither all zeros */
	uint32_t blocks_encoded;    /* rewritten, new bytes look base64/hex */
	uint32_t diff_segments;     /* runs of differing bytes in rewritten
	                             * blocks, split by >= 8 equal bytes */
	uint64_t diff_bytes;        /* bytes that differ in rewritten blocks */
	double old_entropy, new_entropy;           /* over rewritten blocks */
	double diff_old_entropy, diff_new_entropy; /* over the differing bytes */
	double changed_byte_frac;   /* diff_bytes / bytes of rewritten blocks */

	/* Evidence; each 0 or 1. */
	int magic_lost;     /* old had a known binary type, new has none (and
	                     * its first block is not simply zeroed).  Another
	                     * known type does not count (an HTML error page
	                     * saved over a PNG): ciphertext has no magic. */
	int format_broken;  /* same type, but a structure the old version
	                     * satisfied is broken now: PNG chunk CRCs, JPEG
	                     * marker chain or byte stuffing, SQLite/ZIP/OLE/
	                     * ELF header fields, the JPEG/PNG/PDF/ZIP
	                     * trailer, or the PDF/zip/tar syntax (keywords,
	                     * record signatures) gone from all rewritten
	                     * blocks while they turned near-random */
	int entropy_up;     /* the differing bytes jumped to near-random:
	                     * new >= 7.2 (less below 512 bytes) and old <= 6.8
	                     * or a rise of >= 1.0 bit; needs >= 256 bytes */
	int b64_camouflage; /* >= 90% of rewritten blocks now look base64/hex
	                     * and <= 10% did before */
	int intermittent;   /* random stripes: differing bytes near-random,
	                     * 10..90% of the bytes differ, >= 12 runs per
	                     * block (finer than any disk sector) */
	int container_new;  /* new is a container of a different type than
	                     * old: a benign tool (gzip, gpg, zip) replaced
	                     * the file in place; the caller decides */
	int wiped;          /* new is empty while old was not, or every block
	                     * that had data and changed is now all zeros
	                     * (truncate, punch hole, zero fill) */
	int suspicious;     /* the verdict: looks destroyed by encryption.
	                     * magic_lost, format_broken, b64_camouflage,
	                     * intermittent, or entropy_up when new is not a
	                     * container; never when container_new.  Wipes do
	                     * not count: see wiped. */
};

/* Compare the old content of a file (old_fd, or -1 for "no old content":
 * a newly created file) with its new content (new_fd).  Reads with pread
 * only, so no file offset changes; the descriptors stay the caller's.
 * Sampled: the first 64 KiB, the last 64 KiB of the common length, 48
 * evenly spaced 4 KiB blocks between, and each version's last 1 KiB:
 * 325 KiB at most; a zip adds its central directory (<= 64 KiB) and up
 * to 64 local headers; when the size changed, new_fd gives up to 81 * 4
 * KiB more (shifted comparison).  Under 750 KiB from either file,
 * whatever its size, and one heap block of about 146 KiB, freed before
 * return.
 * A file that changes while it is read is compared over what could be
 * read.  Without old content only the types, sizes and new_entropy (over
 * the sampled new blocks) are filled in and every flag is 0: see
 * bw_new_file_ciphertext_like.
 * Returns 0, BW_EINVAL (new_fd < 0 or out NULL), BW_ENOMEM, or the error
 * of fstat/pread; *out is zeroed first and complete only on success. */
int bw_sample_compare(int old_fd, int new_fd, struct bw_sample_cmp *out) BW_WUR;

/* The same over two buffers (old may be NULL with old_len 0 for "no old
 * content"), reading them exactly as the file version would: used by the
 * tests and the fuzz target. */
int bw_sample_compare_mem(const uint8_t *old, size_t old_len,
                          const uint8_t *new_, size_t new_len,
                          struct bw_sample_cmp *out) BW_WUR;
/* The same with the old content behind a reader: old_len bytes, read
 * with rd(arg, off, buf, len, &got), got short only past the end (a
 * compressed vault copy). */
typedef int (*bw_sample_read_fn)(void *arg, uint64_t off, uint8_t *buf, size_t len,
                                 size_t *got);
int bw_sample_compare_rd(bw_sample_read_fn rd, void *arg, uint64_t old_len, int new_fd,
                         struct bw_sample_cmp *out) BW_WUR;

/* For a new file with no old content: 1 if it looks like ciphertext of no
 * known format (type UNKNOWN with near-random sampled blocks, or text
 * whose blocks look base64/hex of random data), 0 if it is ordinary or a
 * container (a benign archive or encrypted format), or a negative BW_E*
 * code from fstat/pread.  Reads the same samples as bw_sample_compare.
 * Headerless compressed or encrypted data (raw deflate, brotli, restic
 * packs, VeraCrypt volumes) is indistinguishable from ciphertext: 1. */
int bw_new_file_ciphertext_like(int fd);
int bw_new_mem_ciphertext_like(const uint8_t *p, size_t n);

#endif
