/* Compressed whole copies in the guard's vault (zcopy.c).
 *
 * A copy of a file over GI_PACK_MAX is stored as its bytes in chunks of
 * GZ_CHUNK, each chunk an independent zstd frame, followed by an index in
 * a zstd skippable frame:
 *
 *   frame 0 .. frame n-1          chunk k = bytes [k*C, min(size, (k+1)*C))
 *   u32le 0x184D2A5E, u32le L     skippable frame header (L: payload length)
 *   "BWZ1", u32le C, u64le size, u32le n, u32le 0
 *   u64le end[0] .. end[n-1]      where frame k ends (frame k starts at end[k-1])
 *   u32le L, "BWZE"               so that a reader finds the index from the end
 *
 * Every frame carries a checksum of its content.  The file is a valid
 * zstd stream (`zstd -d` gives the old content back);
 * any chunk can be read on its own (the analysis samples a few blocks of
 * a large file).  Holes of the original are not read: they are stored as
 * frames of zeros, a few bytes each. */
#ifndef BW_GUARD_ZCOPY_H
#define BW_GUARD_ZCOPY_H

#include <stddef.h>
#include <stdint.h>

#define GZ_CHUNK (128u << 10)
#define GZ_BATCH (8 * GZ_CHUNK)   /* read and written at a time; a packed copy's limit */

/* Scratch for writing: kept by the caller (the engine keeps one). */
struct gz_writer {
	void *cctx;        /* ZSTD_CCtx */
	uint8_t *in, *out; /* GZ_BATCH bytes of input; its compressed frames */
	size_t outcap;
};
void gz_writer_release(struct gz_writer *w);

/* Copy size bytes of in (from offset 0) to out (empty, at offset 0) as a
 * compressed copy.  *stored: bytes written.  0 or an error code. */
int gz_write(struct gz_writer *w, int in, int out, uint64_t size, uint64_t *stored);

/* Compress n bytes (at most GZ_BATCH) at p into one frame, a small copy
 * packed into a segment: *out points into w's scratch. */
int gz_pack(struct gz_writer *w, const uint8_t *p, size_t n, const uint8_t **out,
            size_t *outlen);
/* The len bytes of a packed copy at off of the segment fd, compressed (z)
 * or not, into buf.  BW_EFORMAT if they are not all there or damaged. */
int gz_unpack(int fd, int64_t off, uint64_t len, int z, uint8_t *buf);

/* Reading one: its index in memory, one chunk decompressed at a time. */
struct gz_reader {
	int fd;
	uint64_t size;     /* of the original */
	uint32_t chunk, n;
	uint64_t *end;     /* n entries */
	void *dctx;        /* ZSTD_DCtx */
	uint8_t *cbuf, *dbuf;
	int64_t cached;    /* the chunk in dbuf, or -1 */
};
/* Read the index of the copy open at fd (not owned).  BW_EFORMAT when it
 * is not a compressed copy or is damaged. */
int gz_open(struct gz_reader *z, int fd);
/* Up to len bytes of the original at off; *got is short only past its end. */
int gz_read(struct gz_reader *z, uint64_t off, uint8_t *buf, size_t len, size_t *got);
void gz_close(struct gz_reader *z);
/* Write the whole original to out at offset 0, blocks of zeros as holes,
 * and cut out to its size.  *size: the original's size. */
int gz_restore(int in, int out, uint64_t *size);

#endif
