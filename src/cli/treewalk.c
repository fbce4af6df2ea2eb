/* Snapshot tree walking and node display shared by ls, find, diff, stats
 * and mount. */
#include "treewalk.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* ---- walking ---------------------------------------------------------------- */

struct walk {
	struct bw_repo *r;
	cli_walk_fn fn;
	void *arg;
	struct bw_buf path;
};

static int walk_tree(struct walk *w, const struct bw_id *id, unsigned depth)
{
	struct bw_tree t;
	size_t base = w->path.len;
	int rc;
	if (depth >= CLI_WALK_MAX_DEPTH)
		return bw_errf(BW_ETOOBIG, "%s: directories nested deeper than %d levels",
		               bw_buf_cstr(&w->path), CLI_WALK_MAX_DEPTH);
	memset(&t, 0, sizeof t);
	if ((rc = bw_repo_load_tree(w->r, id, &t)))
		return rc;
	for (size_t i = 0; i < t.n; i++) {
		const struct bw_node *n = &t.nodes[i];
		w->path.len = base;
		if ((rc = bw_buf_put_u8(&w->path, '/')) ||
		    (rc = bw_buf_append(&w->path, n->name, n->name_len)))
			goto out;
		struct cli_walk_ent e = {bw_buf_cstr(&w->path), w->path.len, n, depth};
		rc = w->fn(w->arg, &e);
		if (rc < 0)
			goto out;
		if (rc != CLI_WALK_SKIP && n->type == BW_NODE_DIR &&
		    (rc = walk_tree(w, &n->subtree, depth + 1)))
			goto out;
		rc = 0;
	}
out:
	w->path.len = base;
	bw_tree_release(&t);
	return rc;
}

int cli_walk(struct bw_repo *r, const struct bw_id *tree, const char *prefix,
             cli_walk_fn fn, void *arg)
{
	struct walk w = {r, fn, arg, {NULL, 0, 0, 0}};
	bw_buf_init(&w.path, (size_t)16 << 20);
	int rc = bw_buf_append(&w.path, prefix, strlen(prefix));
	if (!rc)
		rc = walk_tree(&w, tree, 0);
	bw_buf_release(&w.path);
	return rc;
}

/* ---- lookup ------------------------------------------------------------------- */

void cli_lookup_release(struct cli_lookup *l)
{
	bw_tree_release(&l->tree);
	free(l->path);
	memset(l, 0, sizeof *l);
}

/* Next path component of *p (skipping empty ones and "."), or len 0. */
static const char *next_comp(const char **p, size_t *len)
{
	for (;;) {
		const char *s = *p;
		while (*s == '/')
			s++;
		const char *e = s;
		while (*e && *e != '/')
			e++;
		*p = e;
		*len = (size_t)(e - s);
		if (*len != 1 || s[0] != '.')
			return s;
	}
}

int cli_lookup_path(struct bw_repo *r, const struct bw_id *root,
                    const char *path, struct cli_lookup *out)
{
	struct bw_buf norm;
	struct bw_id dir = *root;
	const char *p = path;
	size_t len;
	int rc = 0;
	memset(out, 0, sizeof *out);
	bw_buf_init(&norm, (size_t)16 << 20);
	out->is_dir = 1;
	out->dir = *root;
	for (const char *c = next_comp(&p, &len); len; c = next_comp(&p, &len)) {
		if (len == 2 && c[0] == '.' && c[1] == '.') {
			rc = bw_errf(BW_EINVAL, "%s: '..' is not allowed in snapshot paths", path);
			goto out;
		}
		if (!out->is_dir) {
			rc = bw_errf(BW_ENOENT, "%s: %s is not a directory", path, bw_buf_cstr(&norm));
			goto out;
		}
		bw_tree_release(&out->tree);
		memset(&out->tree, 0, sizeof out->tree);
		if ((rc = bw_repo_load_tree(r, &dir, &out->tree)))
			goto out;
		if ((rc = bw_buf_put_u8(&norm, '/')) || (rc = bw_buf_append(&norm, c, len)))
			goto out;
		out->node = bw_tree_find(&out->tree, c, len);
		if (!out->node) {
			rc = bw_errf(BW_ENOENT, "%s: no such file or directory in the snapshot", path);
			goto out;
		}
		out->is_dir = out->node->type == BW_NODE_DIR;
		if (out->is_dir)
			dir = out->dir = out->node->subtree;
	}
	if (!(out->path = strdup(bw_buf_cstr(&norm))))
		rc = BW_ENOMEM;
out:
	bw_buf_release(&norm);
	return rc;
}

/* ---- ID map -------------------------------------------------------------------- */

void cli_idmap_init(struct cli_idmap *m)
{
	memset(m, 0, sizeof *m);
}

void cli_idmap_release(struct cli_idmap *m)
{
	free(m->e);
	memset(m, 0, sizeof *m);
}

static size_t id_hash(const struct bw_id *id)
{
	uint64_t h;
	memcpy(&h, id->b, sizeof h); /* IDs are MACs/hashes: uniform already */
	return (size_t)h;
}

struct cli_idmap_ent *cli_idmap_find(const struct cli_idmap *m,
                                     const struct bw_id *id)
{
	if (!m->cap)
		return NULL;
	for (size_t i = id_hash(id) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct cli_idmap_ent *e = &m->e[i];
		if (!e->used)
			return NULL;
		if (!memcmp(e->id.b, id->b, BW_ID_LEN))
			return e;
	}
}

static int idmap_grow(struct cli_idmap *m)
{
	size_t nc = m->cap ? m->cap * 2 : 1024;
	struct cli_idmap_ent *ne = calloc(nc, sizeof *ne);
	if (!ne)
		return BW_ENOMEM;
	for (size_t k = 0; k < m->cap; k++) {
		if (!m->e[k].used)
			continue;
		size_t i = id_hash(&m->e[k].id) & (nc - 1);
		while (ne[i].used)
			i = (i + 1) & (nc - 1);
		ne[i] = m->e[k];
	}
	free(m->e);
	m->e = ne;
	m->cap = nc;
	return 0;
}

int cli_idmap_put(struct cli_idmap *m, const struct bw_id *id, const uint64_t *v)
{
	if (cli_idmap_find(m, id))
		return 0;
	if ((m->n + 1) * 4 > m->cap * 3) {
		int rc = idmap_grow(m);
		if (rc)
			return rc;
	}
	size_t i = id_hash(id) & (m->cap - 1);
	while (m->e[i].used)
		i = (i + 1) & (m->cap - 1);
	m->e[i].id = *id;
	m->e[i].used = 1;
	if (v)
		memcpy(m->e[i].v, v, sizeof m->e[i].v);
	m->n++;
	return 1;
}

/* ---- showing nodes ------------------------------------------------------------- */

void cli_mode_string(const struct bw_node *n, char out[11])
{
	static const char types[] = "?-dlcbps";
	uint32_t m = n->mode;
	out[0] = n->type < sizeof types - 1 ? types[n->type] : '?';
	for (int i = 0; i < 3; i++) {
		uint32_t bits = m >> (6 - 3 * i);
		out[1 + 3 * i] = bits & 4 ? 'r' : '-';
		out[2 + 3 * i] = bits & 2 ? 'w' : '-';
		out[3 + 3 * i] = bits & 1 ? 'x' : '-';
	}
	if (m & 04000)
		out[3] = out[3] == 'x' ? 's' : 'S';
	if (m & 02000)
		out[6] = out[6] == 'x' ? 's' : 'S';
	if (m & 01000)
		out[9] = out[9] == 'x' ? 't' : 'T';
	out[10] = 0;
}

const char *cli_node_type_name(uint8_t type)
{
	switch (type) {
	case BW_NODE_FILE: return "file";
	case BW_NODE_DIR: return "dir";
	case BW_NODE_SYMLINK: return "symlink";
	case BW_NODE_CHR: return "chardev";
	case BW_NODE_BLK: return "blockdev";
	case BW_NODE_FIFO: return "fifo";
	case BW_NODE_SOCK: return "socket";
	}
	return "unknown";
}

uint32_t cli_node_st_mode(const struct bw_node *n)
{
	uint32_t t = 0;
	switch (n->type) {
	case BW_NODE_FILE: t = S_IFREG; break;
	case BW_NODE_DIR: t = S_IFDIR; break;
	case BW_NODE_SYMLINK: t = S_IFLNK; break;
	case BW_NODE_CHR: t = S_IFCHR; break;
	case BW_NODE_BLK: t = S_IFBLK; break;
	case BW_NODE_FIFO: t = S_IFIFO; break;
	case BW_NODE_SOCK: t = S_IFSOCK; break;
	}
	return t | (n->mode & 07777);
}

json_t *cli_json_node(const char *path, size_t path_len, const struct bw_node *n)
{
	char perm[11], mt[40], at[40], ct[40];
	cli_mode_string(n, perm);
	bw_time_format(n->mtime_ns, mt);
	bw_time_format(n->atime_ns, at);
	bw_time_format(n->ctime_ns, ct);
	json_t *j = json_pack("{s:s,s:o,s:s,s:o,s:I,s:I,s:s,s:I,s:I,s:o,s:o,s:s,s:s,s:s,s:I,s:I}",
	        "message_type", "node",
	        "name", cli_json_str_n(n->name, n->name_len),
	        "type", cli_node_type_name(n->type),
	        "path", cli_json_str_n(path, path_len),
	        "size", (json_int_t)(n->type == BW_NODE_FILE ? n->size : 0),
	        "mode", (json_int_t)cli_node_st_mode(n),
	        "permissions", perm,
	        "uid", (json_int_t)n->uid,
	        "gid", (json_int_t)n->gid,
	        "user", cli_json_str_n(n->user ? n->user : "", n->user_len),
	        "group", cli_json_str_n(n->group ? n->group : "", n->group_len),
	        "mtime", mt, "atime", at, "ctime", ct,
	        "inode", (json_int_t)n->ino,
	        "links", (json_int_t)n->nlink);
	if (!j)
		return NULL;
	if (n->type == BW_NODE_SYMLINK)
		json_object_set_new(j, "target", cli_json_str_n(n->target, n->target_len));
	if (n->type == BW_NODE_CHR || n->type == BW_NODE_BLK)
		json_object_set_new(j, "rdev", json_integer((json_int_t)n->rdev));
	if (n->type == BW_NODE_FILE)
		json_object_set_new(j, "blobs", json_integer((json_int_t)n->ncontent));
	if (n->nxattrs) {
		json_t *x = json_array();
		for (size_t i = 0; i < n->nxattrs; i++)
			json_array_append_new(x, cli_json_str_n(n->xattrs[i].name,
			                                        n->xattrs[i].name_len));
		json_object_set_new(j, "xattrs", x);
	}
	return j;
}

static void print_owner(FILE *f, const char *name, size_t len, uint32_t id)
{
	if (name && len) {
		cli_print_escaped(f, name, len);
		for (size_t i = len; i < 8; i++)
			fputc(' ', f);
	} else {
		fprintf(f, "%-8u", id);
	}
}

void cli_print_node_long(FILE *f, const char *path, size_t path_len,
                         const struct bw_node *n)
{
	char perm[11], mt[40];
	cli_mode_string(n, perm);
	bw_time_format_local(n->mtime_ns, mt);
	fprintf(f, "%s ", perm);
	print_owner(f, n->user, n->user_len, n->uid);
	fputc(' ', f);
	print_owner(f, n->group, n->group_len, n->gid);
	if (n->type == BW_NODE_CHR || n->type == BW_NODE_BLK)
		fprintf(f, " %4u,%5u", (unsigned)major(n->rdev), (unsigned)minor(n->rdev));
	else
		fprintf(f, " %10llu", (unsigned long long)(n->type == BW_NODE_FILE ? n->size : 0));
	fprintf(f, " %s ", mt);
	cli_print_escaped(f, path, path_len);
	if (n->type == BW_NODE_SYMLINK) {
		fputs(" -> ", f);
		cli_print_escaped(f, n->target, n->target_len);
	}
	fputc('\n', f);
}
