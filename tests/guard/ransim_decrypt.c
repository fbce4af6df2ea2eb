/* bw-ransim decrypt: undo what an attack did, from its log or by name
 * (see ransim.h). */
#include "ransim.h"

/* ---- decrypt ------------------------------------------------------------- */

static int b64_undo(struct job *j)
{
	uint8_t *buf, *bin;
	size_t tlen, blen = 0;
	int r;

	if (j->size <= B64_KEEP)
		return 0;
	if ((r = read_whole(j, &buf)) < 0)
		return r;
	tlen = (size_t)j->size - B64_KEEP;
	if (!(bin = malloc(tlen))) {
		free(buf);
		return -ENOMEM;
	}
	r = sodium_base642bin(bin, tlen, (const char *)buf + B64_KEEP, tlen, NULL, &blen, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) ? E_B64 : 0;
	if (r == 0) {
		ks_xor(j, bin, blen, B64_KEEP);
		r = pwrite_all(j->fd, bin, blen, B64_KEEP);
	}
	if (r == 0 && ftruncate(j->fd, (off_t)(B64_KEEP + blen)) < 0)
		r = -errno;
	free(bin);
	free(buf);
	return r;
}

/* cur: the name on disk; orig: the name before the attack (nonce, final). */
static int decrypt_one(struct ctx *c, const char *cur, const char *orig)
{
	const struct variant *v = c->o->variant;
	struct job j = {.c = c, .rel = orig, .pdir = -1, .fd = -1};
	const char *obase = strrchr(orig, '/');
	struct xst st;
	int r;

	obase = obase ? obase + 1 : orig;
	if ((j.pdir = open_parent(c, cur, &j.base)) < 0) {
		r = j.pdir;
		goto out;
	}
	if ((j.fd = open_target(c, j.pdir, j.base, O_RDWR, &st)) < 0) {
		r = j.fd;
		goto out;
	}
	j.size = st.size;
	nonce_for(orig, j.nonce);
	r = v->cls == VC_B64 ? b64_undo(&j) : xform_chunks(&j, j.fd, v->cls);
	if (r == 0 && v->renames && renameat2(j.pdir, j.base, j.pdir, obase, RENAME_NOREPLACE) < 0)
		r = -errno;
out:
	if (r < 0)
		errmsg("decrypt %s: %s: %s", v->name, cur, why(r));
	return job_end(&j, r);
}

/* The files a log says were done ("start" and unparsable lines skipped),
 * sorted, each once. */
static int log_files(const char *path, struct slist *out)
{
	struct bw_buf b;
	char *line, *nl;
	int r;

	bw_buf_init(&b, (size_t)256 << 20);
	if ((r = bw_file_read(path, (size_t)256 << 20, &b)) < 0) {
		errmsg("--from-log %s: %s", path, bw_strerror(r));
		bw_buf_release(&b);
		return -1;
	}
	bw_buf_cstr(&b); /* NUL after the data */
	for (line = (char *)b.data; line && *line && r == 0; line = nl) {
		char *p = line, *q;
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = 0;
		size_t k = 0;
		for (int f = 0; f < 2 && p; f++) {
			strtoll(p, &q, 10);
			p = q != p && *q == ' ' ? q + 1 : NULL;
		}
		if (!p || !*p)
			continue;
		for (q = p; *q; q++, k++) { /* unescape in place */
			if (*q == '\\' && q[1]) {
				q++;
				p[k] = *q == 'n' ? '\n' : *q == 'r' ? '\r' : *q;
			} else {
				p[k] = *q;
			}
		}
		p[k] = 0;
		r = slist_push(out, p);
	}
	bw_buf_release(&b);
	qsort(out->v, out->n, sizeof out->v[0], cmp_str);
	for (size_t i = 1, w = 1; i <= out->n; i++) {
		if (i == out->n) {
			out->n = out->n ? w : 0;
			break;
		}
		if (strcmp(out->v[i], out->v[w - 1]))
			out->v[w++] = out->v[i];
		else
			free(out->v[i]);
	}
	return r;
}

static void remove_notes(struct ctx *c, struct slist *dirs)
{
	for (size_t i = 0; i < dirs->n; i++) {
		char head[sizeof NOTE_MAGIC];
		int dfd = open_dir(c, dirs->v[i]), fd;
		if (dfd < 0)
			continue;
		fd = openat(dfd, NOTE_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0) {
			ssize_t n = read(fd, head, sizeof head - 1);
			close(fd);
			if (n == (ssize_t)sizeof head - 1 && !memcmp(head, NOTE_MAGIC, sizeof head - 1))
				unlinkat(dfd, NOTE_NAME, 0);
		}
		close(dfd);
	}
}

static int decrypt_logged(struct ctx *c)
{
	struct slist files = {0};
	int r = log_files(c->o->from_log, &files);

	for (size_t i = 0; r == 0 && i < files.n; i++) {
		const char *orig = files.v[i], *base;
		char *cur = c->o->variant->renames ? malloc(strlen(orig) + strlen(c->o->ext) + 1) : NULL;
		struct xst st;
		int pdir;
		if (c->o->variant->renames && !cur) {
			r = -ENOMEM;
			break;
		}
		if (cur)
			snprintf(cur, strlen(orig) + strlen(c->o->ext) + 1, "%s%s", orig, c->o->ext);
		pdir = open_parent(c, cur ? cur : orig, &base);
		if (pdir >= 0 && xstat(pdir, base, &st) == -ENOENT && is_backup_name(base)) {
			/* deleted by --delete-backups-first: nothing to decrypt */
		} else {
			decrypt_one(c, cur ? cur : orig, orig);
		}
		if (pdir >= 0)
			close(pdir);
		free(cur);
	}
	slist_free(&files);
	return r;
}

int cmd_decrypt(struct ctx *c)
{
	const struct variant *v = c->o->variant;
	struct tlist t = {0};
	struct slist dirs = {0};
	struct walk w = {c, &t, NULL, &dirs, v->renames ? W_SUFFIX : W_ALL};
	int r;

	if ((r = walk_tree(&w)) < 0) {
		errmsg("%s: walk: %s", c->real, why(r));
		goto out;
	}
	if (c->o->from_log) {
		r = decrypt_logged(c);
	} else {
		for (size_t i = 0; i < t.n; i++) {
			size_t n = strlen(t.v[i].rel);
			char *orig = strdup(t.v[i].rel);
			if (!orig) {
				r = -ENOMEM;
				break;
			}
			if (v->renames)
				orig[n - strlen(c->o->ext)] = 0;
			decrypt_one(c, t.v[i].rel, orig);
			free(orig);
		}
	}
	remove_notes(c, &dirs);
	summary(c, "decrypt");
out:
	tlist_free(&t);
	slist_free(&dirs);
	return r < 0 ? RC_ERR : c->cnt->errors ? RC_ERR : RC_OK;
}
