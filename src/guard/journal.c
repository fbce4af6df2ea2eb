/* The vault journal: one JSON line per thing the guard kept or saw
 * happen in a protected tree, appended with a single write(2) so that
 * lines from several threads never interleave and a killed guard leaves
 * whole lines behind.  rollback.c replays it.
 *
 *   {"t":NS,"op":"link|copy|create|delete|rename|mkdir|rmdir","pid":P,"sid":S,
 *    "path":"...","to":"...","ino":I,"dev":D,"size":N,"mode":M,"uid":U,
 *    "gid":G,"mtime":NS,"vault":"..."}
 *
 * Paths that are not UTF-8 are written as "path_hex"/"to_hex". */
#include "guard_int.h"
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int gj_utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		int n = (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
		      : (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0 || *p == 0xc0 || *p == 0xc1)
			return 0;
		for (int i = 1; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		p += n + 1;
	}
	return 1;
}

void gj_set_path(json_t *o, const char *key, const char *path)
{
	if (!path)
		return;
	if (gj_utf8_ok(path)) {
		json_object_set_new(o, key, json_string(path));
		return;
	}
	size_t n = strlen(path);
	char *hex = malloc(2 * n + 1);
	char k[32];
	if (!hex)
		return;
	bw_hex_encode((const uint8_t *)path, n, hex);
	snprintf(k, sizeof k, "%s_hex", key);
	json_object_set_new(o, k, json_string(hex));
	free(hex);
}

int gj_write_line(int fd, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	if (!s)
		return BW_ENOMEM;
	size_t n = strlen(s);
	char *l = realloc(s, n + 2);
	if (!l) {
		free(s);
		return BW_ENOMEM;
	}
	l[n] = '\n';
	l[n + 1] = 0;
	int r = bw_write_full(fd, l, n + 1);
	free(l);
	return r;
}

static json_t *entry(struct bw_guard *g, const char *op, pid_t pid,
                     const char *path, const char *to, const struct stat *st,
                     const char *vault)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "t", json_integer(bw_now_ns()));
	json_object_set_new(o, "op", json_string(op));
	json_object_set_new(o, "pid", json_integer(pid));
	if (pid > 0)
		json_object_set_new(o, "sid", json_integer(gi_sid_of(g, pid)));
	gj_set_path(o, "path", path);
	gj_set_path(o, "to", to);
	if (st) {
		json_object_set_new(o, "ino", json_integer((json_int_t)st->st_ino));
		json_object_set_new(o, "dev", json_integer((json_int_t)st->st_dev));
		json_object_set_new(o, "size", json_integer(st->st_size));
		json_object_set_new(o, "mode", json_integer(st->st_mode));
		json_object_set_new(o, "uid", json_integer(st->st_uid));
		json_object_set_new(o, "gid", json_integer(st->st_gid));
		json_object_set_new(o, "mtime",
		                    json_integer((json_int_t)st->st_mtim.tv_sec * 1000000000 +
		                                 st->st_mtim.tv_nsec));
	}
	gj_set_path(o, "vault", vault);
	return o;
}

static void put(struct bw_guard *g, json_t *o)
{
	if (!o)
		return;
	if (gj_write_line(g->journal_fd, o))
		bw_warn("guard: journal write failed: %s", strerror(errno));
	json_decref(o);
}

void gi_journal(struct bw_guard *g, const char *op, pid_t pid,
                const char *path, const char *to, const struct stat *st,
                const char *vault)
{
	put(g, entry(g, op, pid, path, to, st, vault));
}

void gi_journal_copy(struct bw_guard *g, pid_t pid, const char *path,
                     const struct stat *st, const char *vault, int64_t off,
                     int ranged, int z)
{
	/* a compressed copy has an op of its own: a replay that does not know
	 * it skips it rather than restoring compressed bytes */
	json_t *o = entry(g, z ? "zcopy" : "copy", pid, path, NULL, st, vault);
	/* packed: where in the segment the bytes are */
	if (o && off >= 0)
		json_object_set_new(o, "off", json_integer(off));
	if (o && ranged)
		json_object_set_new(o, "ranged", json_true());
	put(g, o);
}

void gi_journal_range(struct bw_guard *g, pid_t pid, const char *path,
                      const struct stat *st, const char *vault, uint64_t at,
                      uint64_t len)
{
	json_t *o = entry(g, "range", pid, path, NULL, NULL, vault);
	if (o) {
		json_object_set_new(o, "ino", json_integer((json_int_t)st->st_ino));
		json_object_set_new(o, "at", json_integer((json_int_t)at));
		json_object_set_new(o, "len", json_integer((json_int_t)len));
	}
	put(g, o);
}

int gj_open_append(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	/* a writer killed mid-line left a torn line: start on a new one, or
	 * the next line would be glued to it and lost */
	struct stat st;
	char c;
	if (!fstat(fd, &st) && st.st_size > 0 && pread(fd, &c, 1, st.st_size - 1) == 1 &&
	    c != '\n' && bw_write_full(fd, "\n", 1))
		bw_err_clear();
	return fd;
}
