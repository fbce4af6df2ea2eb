/* bulwark core: errors, byte buffers, bounded readers, logging, files,
 * hex, time and a small thread pool.  Everything else builds on this. */
#ifndef BULWARK_CORE_H
#define BULWARK_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BW_WUR __attribute__((warn_unused_result))
#define BW_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---- errors ---------------------------------------------------------
 * Functions return 0 on success or a negative BW_E* code. */
enum {
	BW_OK = 0,
	BW_ENOMEM = -1,     /* out of memory */
	BW_EIO = -2,        /* I/O error from the OS */
	BW_EINVAL = -3,     /* invalid argument or usage */
	BW_EFORMAT = -4,    /* malformed or truncated stored data */
	BW_EAUTH = -5,      /* authentication failed: data was altered */
	BW_ENOENT = -6,     /* no such object or file */
	BW_EEXIST = -7,     /* object or file already exists */
	BW_ETOOBIG = -8,    /* a size limit was exceeded */
	BW_EPASS = -9,      /* no key matches the passphrase */
	BW_EVERSION = -10,  /* repository or object format not supported */
	BW_ENOSPC = -11,    /* no space left on device */
	BW_EPERM = -12,     /* permission denied / refused by append-only store */
	BW_ECANCELED = -13, /* interrupted by the user */
	BW_EBUSY = -14,     /* resource in use */
	BW_EUNSUP = -15,    /* operation not supported here */
	BW_EDAMAGED = -16,  /* finished, but some objects were damaged */
};

/* Words for a code; never NULL. */
const char *bw_strerror(int code);
/* Map an errno value to a BW_E* code. */
int bw_from_errno(int e);

/* A thread-local detail message for the last error.  bw_errf() records
 * "what failed, on which object" and returns code, so callers write
 *   return bw_errf(BW_EFORMAT, "pack %s: header truncated", name);
 * The first message set since bw_err_clear() wins: the innermost cause is
 * what the user needs to see. */
int bw_errf(int code, const char *fmt, ...) BW_PRINTF(2, 3);
const char *bw_err_msg(void);  /* "" if none */
void bw_err_clear(void);

/* ---- logging ----------------------------------------------------------- */
enum bw_log_level { BW_LOG_ERROR, BW_LOG_WARN, BW_LOG_INFO, BW_LOG_DEBUG };
extern int bw_log_level;
void bw_log_set_json(int on);
void bw_log_write(int level, const char *file, int line, const char *func,
                  const char *fmt, ...) BW_PRINTF(5, 6);
#define bw_log_(lvl, ...)                                                    \
	do {                                                                 \
		if ((lvl) <= bw_log_level)                                   \
			bw_log_write((lvl), __FILE__, __LINE__, __func__,    \
			             __VA_ARGS__);                           \
	} while (0)
#define bw_error(...) bw_log_(BW_LOG_ERROR, __VA_ARGS__)
#define bw_warn(...) bw_log_(BW_LOG_WARN, __VA_ARGS__)
#define bw_info(...) bw_log_(BW_LOG_INFO, __VA_ARGS__)
#define bw_debug(...) bw_log_(BW_LOG_DEBUG, __VA_ARGS__)

/* ---- byte buffer --------------------------------------------------------
 * Length-carrying, growable, with a hard maximum.  The owner calls
 * bw_buf_release().  data may be NULL while cap == 0.  Never relies on NUL,
 * but bw_buf_cstr() keeps one spare NUL after len for text use. */
struct bw_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
};
#define BW_BUF_MAX_DEFAULT ((size_t)1 << 30)
void bw_buf_init(struct bw_buf *b, size_t max);
void bw_buf_release(struct bw_buf *b);
void bw_buf_reset(struct bw_buf *b); /* len = 0, keeps memory */
int bw_buf_reserve(struct bw_buf *b, size_t extra) BW_WUR;
int bw_buf_append(struct bw_buf *b, const void *p, size_t n) BW_WUR;
int bw_buf_put_u8(struct bw_buf *b, uint8_t v) BW_WUR;
int bw_buf_put_u32le(struct bw_buf *b, uint32_t v) BW_WUR;
int bw_buf_put_u64le(struct bw_buf *b, uint64_t v) BW_WUR;
int bw_buf_put_varint(struct bw_buf *b, uint64_t v) BW_WUR;
int bw_buf_put_svarint(struct bw_buf *b, int64_t v) BW_WUR;
/* varint length then bytes */
int bw_buf_put_bytes(struct bw_buf *b, const void *p, size_t n) BW_WUR;
int bw_buf_printf(struct bw_buf *b, const char *fmt, ...) BW_PRINTF(2, 3) BW_WUR;
const char *bw_buf_cstr(struct bw_buf *b); /* NUL-terminated view, or "" */

/* ---- bounded reader over bytes it does not own ------------------------
 * Every getter fails with BW_EFORMAT instead of reading past the end. */
struct bw_view {
	const uint8_t *p;
	size_t len;
};
static inline struct bw_view bw_view_make(const void *p, size_t len)
{
	struct bw_view v = {(const uint8_t *)p, len};
	return v;
}
int bw_view_u8(struct bw_view *v, uint8_t *out) BW_WUR;
int bw_view_u32le(struct bw_view *v, uint32_t *out) BW_WUR;
int bw_view_u64le(struct bw_view *v, uint64_t *out) BW_WUR;
int bw_view_varint(struct bw_view *v, uint64_t *out) BW_WUR;
int bw_view_svarint(struct bw_view *v, int64_t *out) BW_WUR;
/* n raw bytes; *out points into the view */
int bw_view_take(struct bw_view *v, size_t n, const uint8_t **out) BW_WUR;
/* varint length (<= max) then bytes */
int bw_view_bytes(struct bw_view *v, size_t max, const uint8_t **out,
                  size_t *n) BW_WUR;
static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* ---- hex ----------------------------------------------------------------- */
/* out must hold 2*n+1 bytes; NUL-terminated */
void bw_hex_encode(const uint8_t *in, size_t n, char *out);
/* exactly 2*n hex digits in s (lower or upper case) */
int bw_hex_decode(const char *s, uint8_t *out, size_t n) BW_WUR;

/* ---- files ----------------------------------------------------------------
 * Read a whole file of at most max bytes into out (appended). */
int bw_file_read(const char *path, size_t max, struct bw_buf *out) BW_WUR;
/* Write atomically: temp file in the same directory, fsync, rename, fsync
 * of the directory.  With excl, fails with BW_EEXIST if path exists
 * (link(2)-based, so a racing writer cannot be overwritten). mode e.g. 0600 */
int bw_file_write_atomic(const char *path, const void *p, size_t n, int mode,
                         int excl) BW_WUR;
int bw_fsync_dir(const char *dir);
int bw_mkdir_p(const char *path, int mode) BW_WUR;
/* write/read all n bytes, retrying on EINTR and short counts */
int bw_write_full(int fd, const void *p, size_t n) BW_WUR;
int bw_pwrite_full(int fd, const void *p, size_t n, uint64_t off) BW_WUR;
int bw_pread_full(int fd, void *p, size_t n, uint64_t off) BW_WUR;
/* path join into a buf (a/b), NUL-terminated */
int bw_path_join(struct bw_buf *out, const char *a, const char *b) BW_WUR;

/* ---- time ------------------------------------------------------------------ */
int64_t bw_now_ns(void);       /* CLOCK_REALTIME */
double bw_mono_s(void);        /* CLOCK_MONOTONIC seconds */
int64_t bw_boot_ns(void);      /* CLOCK_BOOTTIME (the clock of /proc/PID/stat start times) */
/* RFC 3339 with nanoseconds, UTC: 2026-11-28T01:02:03.123456789Z */
void bw_time_format(int64_t ns, char out[40]);
/* local time, second precision: 2026-11-28 01:02:03 */
void bw_time_format_local(int64_t ns, char out[40]);
int bw_time_parse(const char *s, int64_t *ns) BW_WUR;
/* "1.5 GiB" */
void bw_fmt_bytes(uint64_t n, char out[32]);

/* ---- thread pool ------------------------------------------------------------
 * Fixed worker threads running submitted tasks in FIFO order. */
struct bw_pool;
struct bw_pool *bw_pool_new(int nthreads);
/* blocks while more than queue_max tasks are waiting (back-pressure) */
int bw_pool_submit(struct bw_pool *p, void (*fn)(void *), void *arg) BW_WUR;
/* how many tasks may wait before bw_pool_submit blocks (default 64 per thread) */
void bw_pool_set_queue_max(struct bw_pool *p, size_t n);
void bw_pool_wait(struct bw_pool *p); /* until queue empty and all idle */
void bw_pool_free(struct bw_pool *p); /* waits, joins */
int bw_ncpu(void);

#endif
