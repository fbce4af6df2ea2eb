/* JSON helpers shared by the journal, alerts and rollback. */
#ifndef BW_GUARD_JOURNAL_H
#define BW_GUARD_JOURNAL_H

#include <bulwark/core.h>

#include <jansson.h>
#include <stdint.h>

int gj_utf8_ok(const char *s);
/* key = path if UTF-8, else key_hex = hex of the bytes */
void gj_set_path(json_t *o, const char *key, const char *path);
/* Open a JSON-lines file for appending, ending a torn last line first. */
int gj_open_append(const char *path);
/* json + "\n" in one write(2) */
int gj_write_line(int fd, json_t *o);

/* One parsed journal line (rollback.c).  Strings are heap copies owned
 * by the entry; release with gj_entry_release. */
enum gj_op { GJ_LINK, GJ_COPY, GJ_CREATE, GJ_DELETE, GJ_RENAME, GJ_MKDIR,
             GJ_RMDIR, GJ_RESTORE, GJ_SEEN, GJ_GONE, GJ_RANGE, GJ_OWN, GJ_OTHER };
struct gj_entry {
	int64_t t;
	enum gj_op op;
	int pid, sid;
	char *path, *to, *vault;
	uint64_t ino, dev, size;
	unsigned mode, uid, gid;
	int64_t mtime;
	int64_t off;      /* packed copy: offset in the segment, else -1 */
	int ranged;       /* a copy that holds only the ranges logged after it */
	int z;            /* a compressed copy (op "zcopy", zcopy.h) */
	uint64_t at, len; /* range: bytes [at, at + len) of the file */
};
/* Parse one line (without the newline).  BW_EFORMAT names what is wrong;
 * the entry is untouched on failure. */
int gj_entry_parse(const char *line, size_t len, struct gj_entry *e) BW_WUR;
void gj_entry_release(struct gj_entry *e);

#endif
