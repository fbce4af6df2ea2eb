/* bulwark diff: what changed between two snapshots.
 *
 * Both root trees are walked side by side, merging the sorted names of
 * each directory.  Directories whose tree IDs are equal hold identical
 * content (trees are content-addressed), so they are skipped unread:
 * the cost is proportional to what changed, not to the snapshot size. */
#include "treewalk.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark diff [OPTIONS] SNAPSHOT1 SNAPSHOT2\n"
"\n"
"Show what changed from SNAPSHOT1 to SNAPSHOT2 ('latest' or ID prefixes).\n"
"One line per change, in path order; directories end with '/':\n"
"  + PATH   added in SNAPSHOT2 (everything below an added directory too)\n"
"  - PATH   removed from SNAPSHOT1 (likewise)\n"
"  M PATH   content changed: a file's data (blob list or size), a symbolic\n"
"           link's target or a device's number\n"
"  T PATH   type changed (e.g. a file became a directory); what was below\n"
"           an old directory is listed as removed, below a new one as added\n"
"  U PATH   only metadata changed (mode, owner, mtime, xattrs); shown only\n"
"           with --metadata\n"
"Then a summary: counts per kind, and bytes added (sizes of files added or\n"
"changed, as they are in SNAPSHOT2) and removed (sizes of files removed or\n"
"changed, as they were in SNAPSHOT1).\n"
"\n"
"Options:\n"
"      --metadata   also report entries whose metadata alone changed\n"
"      --json       one JSON object per change (message_type \"change\":\n"
"                   path, modifier, type), then one with the totals\n"
"                   (message_type \"statistics\")\n"
"\n"
"Exit codes: 0 compared (whether or not anything changed), 1 error,\n"
"2 bad command line, 10/11 no repository / wrong passphrase.\n");
}

enum { DEL = 0, ADD = 1 };

struct diff_stats {
	uint64_t files[2], dirs[2], others[2];
	uint64_t files_changed, others_changed, type_changed, meta_changed;
	uint64_t bytes[2];
};

struct diff {
	struct bw_repo *r;
	int metadata;
	struct bw_buf path;
	struct diff_stats st;
};

static int report(char mod, const char *path, size_t len, const struct bw_node *n)
{
	if (g.json) {
		char m[2] = {mod, 0};
		json_t *j = json_pack("{s:s,s:o,s:s,s:s}", "message_type", "change",
		                      "path", cli_json_str_n(path, len), "modifier", m,
		                      "type", cli_node_type_name(n->type));
		cli_json_print(j);
	} else if (!g.quiet) {
		printf("%c    ", mod);
		cli_print_escaped(stdout, path, len);
		if (n->type == BW_NODE_DIR)
			fputc('/', stdout);
		fputc('\n', stdout);
	}
	return ferror(stdout) ? bw_errf(BW_EIO, "cannot write to standard output") : 0;
}

static void count(struct diff_stats *st, int side, const struct bw_node *n)
{
	if (n->type == BW_NODE_FILE) {
		st->files[side]++;
		st->bytes[side] += n->size;
	} else if (n->type == BW_NODE_DIR) {
		st->dirs[side]++;
	} else {
		st->others[side]++;
	}
}

struct side_walk {
	struct diff *d;
	int side;
};

static int on_side_entry(void *arg, const struct cli_walk_ent *e)
{
	struct side_walk *w = arg;
	count(&w->d->st, w->side, e->node);
	return report(w->side == ADD ? '+' : '-', e->path, e->path_len, e->node);
}

/* Report everything below directory tree id (at the current path). */
static int one_side(struct diff *d, const struct bw_id *id, int side)
{
	struct side_walk w = {d, side};
	return cli_walk(d->r, id, bw_buf_cstr(&d->path), on_side_entry, &w);
}

/* n added or removed, with everything below it */
static int whole(struct diff *d, const struct bw_node *n, int side)
{
	int rc;
	count(&d->st, side, n);
	if ((rc = report(side == ADD ? '+' : '-', (const char *)d->path.data,
	                 d->path.len, n)))
		return rc;
	return n->type == BW_NODE_DIR ? one_side(d, &n->subtree, side) : 0;
}

static int same_bytes(const void *a, size_t al, const void *b, size_t bl)
{
	return al == bl && (!al || !memcmp(a, b, al));
}

static int meta_differs(const struct bw_node *a, const struct bw_node *b)
{
	if (a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
	    a->mtime_ns != b->mtime_ns || a->nxattrs != b->nxattrs ||
	    !same_bytes(a->user, a->user_len, b->user, b->user_len) ||
	    !same_bytes(a->group, a->group_len, b->group, b->group_len))
		return 1;
	for (size_t i = 0; i < a->nxattrs; i++) {
		const struct bw_xattr *x = &a->xattrs[i], *y = &b->xattrs[i];
		if (!same_bytes(x->name, x->name_len, y->name, y->name_len) ||
		    !same_bytes(x->value, x->value_len, y->value, y->value_len))
			return 1;
	}
	return 0;
}

static int content_differs(const struct bw_node *a, const struct bw_node *b)
{
	switch (a->type) {
	case BW_NODE_FILE:
		return a->size != b->size || a->ncontent != b->ncontent ||
		       (a->ncontent && memcmp(a->content, b->content,
		                              a->ncontent * sizeof *a->content));
	case BW_NODE_SYMLINK:
		return !same_bytes(a->target, a->target_len, b->target, b->target_len);
	case BW_NODE_CHR:
	case BW_NODE_BLK:
		return a->rdev != b->rdev;
	}
	return 0;
}

static int diff_trees(struct diff *d, const struct bw_id *ta,
                      const struct bw_id *tb, unsigned depth);

/* The same name on both sides; d->path is its path. */
static int diff_nodes(struct diff *d, const struct bw_node *a,
                      const struct bw_node *b, unsigned depth)
{
	const char *p = (const char *)d->path.data;
	size_t len = d->path.len;
	int rc = 0;
	if (a->type != b->type) {
		d->st.type_changed++;
		if (a->type == BW_NODE_FILE)
			d->st.bytes[DEL] += a->size;
		if (b->type == BW_NODE_FILE)
			d->st.bytes[ADD] += b->size;
		if ((rc = report('T', p, len, b)))
			return rc;
		if (a->type == BW_NODE_DIR && (rc = one_side(d, &a->subtree, DEL)))
			return rc;
		if (b->type == BW_NODE_DIR)
			rc = one_side(d, &b->subtree, ADD);
		return rc;
	}
	if (content_differs(a, b)) {
		if (a->type == BW_NODE_FILE) {
			d->st.files_changed++;
			d->st.bytes[DEL] += a->size;
			d->st.bytes[ADD] += b->size;
		} else {
			d->st.others_changed++;
		}
		rc = report('M', p, len, b);
	} else if (d->metadata && meta_differs(a, b)) {
		d->st.meta_changed++;
		rc = report('U', p, len, b);
	}
	if (!rc && a->type == BW_NODE_DIR &&
	    memcmp(a->subtree.b, b->subtree.b, BW_ID_LEN))
		rc = diff_trees(d, &a->subtree, &b->subtree, depth + 1);
	return rc;
}

static int diff_trees(struct diff *d, const struct bw_id *ta,
                      const struct bw_id *tb, unsigned depth)
{
	struct bw_tree a, b;
	size_t base = d->path.len, i = 0, j = 0;
	int rc;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	if (depth >= CLI_WALK_MAX_DEPTH)
		return bw_errf(BW_ETOOBIG, "%s: directories nested deeper than %d levels",
		               bw_buf_cstr(&d->path), CLI_WALK_MAX_DEPTH);
	if ((rc = bw_repo_load_tree(d->r, ta, &a)) || (rc = bw_repo_load_tree(d->r, tb, &b)))
		goto out;
	while (!rc && (i < a.n || j < b.n)) {
		const struct bw_node *x = i < a.n ? &a.nodes[i] : NULL;
		const struct bw_node *y = j < b.n ? &b.nodes[j] : NULL;
		int c = !x ? 1 : !y ? -1 : bw_node_cmp_name(x->name, x->name_len, y->name, y->name_len);
		const struct bw_node *n = c > 0 ? y : x;
		d->path.len = base;
		if ((rc = bw_buf_put_u8(&d->path, '/')) ||
		    (rc = bw_buf_append(&d->path, n->name, n->name_len)) ||
		    (rc = bw_buf_put_u8(&d->path, 0)))
			break;
		d->path.len--; /* keep the NUL for walks started here */
		if (c < 0) {
			rc = whole(d, x, DEL);
			i++;
		} else if (c > 0) {
			rc = whole(d, y, ADD);
			j++;
		} else {
			rc = diff_nodes(d, x, y, depth);
			i++;
			j++;
		}
	}
out:
	d->path.len = base;
	bw_tree_release(&a);
	bw_tree_release(&b);
	return rc;
}

static void summary(const struct diff *d, const struct bw_snapshot *s1,
                    const struct bw_snapshot *s2)
{
	const struct diff_stats *st = &d->st;
	if (g.json) {
		char h1[2 * BW_ID_LEN + 1], h2[2 * BW_ID_LEN + 1];
		bw_id_hex(&s1->id, h1);
		bw_id_hex(&s2->id, h2);
		json_t *add = json_pack("{s:I,s:I,s:I,s:I}",
		        "files", (json_int_t)st->files[ADD], "dirs", (json_int_t)st->dirs[ADD],
		        "others", (json_int_t)st->others[ADD], "bytes", (json_int_t)st->bytes[ADD]);
		json_t *del = json_pack("{s:I,s:I,s:I,s:I}",
		        "files", (json_int_t)st->files[DEL], "dirs", (json_int_t)st->dirs[DEL],
		        "others", (json_int_t)st->others[DEL], "bytes", (json_int_t)st->bytes[DEL]);
		cli_json_print(json_pack("{s:s,s:s,s:s,s:o,s:o,s:I,s:I,s:I,s:I}",
		        "message_type", "statistics", "source_snapshot", h1,
		        "target_snapshot", h2, "added", add, "removed", del,
		        "files_changed", (json_int_t)st->files_changed,
		        "others_changed", (json_int_t)st->others_changed,
		        "type_changed", (json_int_t)st->type_changed,
		        "metadata_changed", (json_int_t)st->meta_changed));
		return;
	}
	if (g.quiet)
		return;
	char ba[32], bd[32];
	bw_fmt_bytes(st->bytes[ADD], ba);
	bw_fmt_bytes(st->bytes[DEL], bd);
	printf("\nFiles:     %llu new, %llu removed, %llu changed\n",
	       (unsigned long long)st->files[ADD], (unsigned long long)st->files[DEL],
	       (unsigned long long)st->files_changed);
	printf("Dirs:      %llu new, %llu removed\n",
	       (unsigned long long)st->dirs[ADD], (unsigned long long)st->dirs[DEL]);
	printf("Others:    %llu new, %llu removed, %llu changed\n",
	       (unsigned long long)st->others[ADD], (unsigned long long)st->others[DEL],
	       (unsigned long long)st->others_changed);
	printf("Type:      %llu changed\n", (unsigned long long)st->type_changed);
	if (d->metadata)
		printf("Metadata:  %llu changed\n", (unsigned long long)st->meta_changed);
	printf("Added:     %s\nRemoved:   %s\n", ba, bd);
}

int cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{"metadata", no_argument, NULL, 1},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct diff d;
	struct bw_snapshot s[2];
	int nsnap = 0, c, r;
	memset(&d, 0, sizeof d);
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case 1: d.metadata = 1; break;
		case 'h': help(); return EXIT_OK;
		default: return cli_usage_error("diff", "unknown option");
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("diff", "give exactly two snapshots");
	bw_buf_init(&d.path, (size_t)16 << 20);
	if ((r = cli_open_repo("diff", &d.r)))
		goto out;
	for (; nsnap < 2; nsnap++)
		if ((r = bw_repo_find_snapshot(d.r, argv[optind + nsnap], NULL, NULL, &s[nsnap])))
			goto out;
	if (!g.quiet && !g.json) {
		char a[9], b[9];
		cli_short_id(&s[0].id, a);
		cli_short_id(&s[1].id, b);
		printf("comparing snapshot %s to %s:\n\n", a, b);
	}
	if (memcmp(s[0].tree.b, s[1].tree.b, BW_ID_LEN) &&
	    (r = diff_trees(&d, &s[0].tree, &s[1].tree, 0)))
		goto out;
	summary(&d, &s[0], &s[1]);
	if (fflush(stdout))
		r = bw_errf(BW_EIO, "cannot write to standard output");
out:
	while (nsnap > 0)
		bw_snapshot_release(&s[--nsnap]);
	bw_buf_release(&d.path);
	if (d.r)
		bw_repo_close(d.r);
	return r ? cli_fail("diff", r) : EXIT_OK;
}
