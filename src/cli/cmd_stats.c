/* bulwark stats: sizes of snapshots and of the repository.
 *
 * Every tree is read once per run, however many snapshots share it: the
 * counts below a tree ID are remembered, and in raw-data and
 * blobs-per-file modes a shared tree's blobs were already counted the
 * first time. */
#include "treewalk.h"
#include "../repo/repo_int.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark stats [OPTIONS] [SNAPSHOT...]\n"
"\n"
"Show how big SNAPSHOTs are ('latest' or ID prefixes; default: all\n"
"snapshots), and the repository's totals: snapshots, pack files and the\n"
"bytes they take on the storage, blobs in the index.\n"
"\n"
"Modes (--mode):\n"
"  restore-size    (default) per snapshot and in total: files, directories,\n"
"                  other entries and the bytes a restore would write\n"
"  raw-data        the distinct blobs the snapshots reference (data and\n"
"                  tree), their plaintext size and their stored size\n"
"                  (compressed and encrypted, as found in the index), the\n"
"                  compression ratio (plaintext / stored) and the\n"
"                  deduplication ratio (restore size / distinct data)\n"
"  blobs-per-file  distinct file contents (same blob list = same content),\n"
"                  their blob count and size, and blobs per file\n"
"\n"
"Options:\n"
"      --mode MODE   one of the modes above\n"
"      --host HOST   with no SNAPSHOT: only snapshots from HOST\n"
"      --json        one JSON object with the same numbers\n"
"\n"
"Exit codes: 0 done, 1 error, 2 bad command line, 3 done but some blobs\n"
"are missing from the index (run `bulwark check`), 10/11 no repository /\n"
"wrong passphrase.\n");
}

enum mode { RESTORE_SIZE, RAW_DATA, BLOBS_PER_FILE };
static const char *const mode_names[] = {"restore-size", "raw-data", "blobs-per-file"};

/* counters per tree: files, dirs, others, bytes */
enum { C_FILES, C_DIRS, C_OTHERS, C_BYTES };

struct stats {
	struct bw_repo *r;
	enum mode mode;
	struct cli_idmap trees, blobs, contents, groups;
	uint64_t nblobs[2], raw[2], stored[2], missing; /* [0] data, [1] tree */
	uint64_t uf_n, uf_blobs, uf_bytes;
};

/* Stored bytes of e not counted yet: a group's bytes count once, with its
 * first member seen.  Returns BW_ENOMEM or the bytes (>= 0) in *add. */
static int stored_once(struct cli_idmap *groups, const struct bw_index_entry *e,
                       uint64_t *add)
{
	*add = e->length;
	if (!e->grouped)
		return 0;
	uint8_t where[8];
	struct bw_id key;
	memcpy(where, &e->pack, 4);
	memcpy(where + 4, &e->offset, 4);
	bw_sha256(where, sizeof where, &key);
	int rc = cli_idmap_put(groups, &key, NULL);
	if (rc < 0)
		return rc;
	if (!rc)
		*add = 0;
	return 0;
}

static int add_blob(struct stats *s, const struct bw_id *id, int is_tree)
{
	struct bw_index_entry e;
	int rc = cli_idmap_put(&s->blobs, id, NULL);
	if (rc <= 0)
		return rc;
	if (bw_index_lookup(s->r->index, id, &e)) {
		s->missing++;
		return 0;
	}
	uint64_t add;
	if ((rc = stored_once(&s->groups, &e, &add)))
		return rc;
	s->nblobs[is_tree]++;
	s->raw[is_tree] += e.raw_length;
	s->stored[is_tree] += add;
	return 0;
}

static int add_content(struct stats *s, const struct bw_node *n)
{
	struct bw_id key;
	bw_sha256(n->content, n->ncontent * sizeof *n->content, &key);
	int rc = cli_idmap_put(&s->contents, &key, NULL);
	if (rc <= 0)
		return rc;
	s->uf_n++;
	s->uf_blobs += n->ncontent;
	s->uf_bytes += n->size;
	return 0;
}

static int count_file(struct stats *s, const struct bw_node *n)
{
	int rc = 0;
	if (s->mode == RAW_DATA)
		for (size_t k = 0; k < n->ncontent && !rc; k++)
			rc = add_blob(s, &n->content[k], 0);
	else if (s->mode == BLOBS_PER_FILE)
		rc = add_content(s, n);
	return rc;
}

/* Adds the counts of everything below tree id to out. */
static int stat_tree(struct stats *s, const struct bw_id *id, unsigned depth,
                     uint64_t out[4])
{
	uint64_t c[4] = {0, 0, 0, 0};
	struct bw_tree t;
	int rc;
	const struct cli_idmap_ent *known = cli_idmap_find(&s->trees, id);
	if (known) {
		for (int k = 0; k < 4; k++)
			out[k] += known->v[k];
		return 0;
	}
	if (depth >= CLI_WALK_MAX_DEPTH)
		return bw_errf(BW_ETOOBIG, "directories nested deeper than %d levels",
		               CLI_WALK_MAX_DEPTH);
	if (s->mode == RAW_DATA && (rc = add_blob(s, id, 1)))
		return rc;
	memset(&t, 0, sizeof t);
	if ((rc = bw_repo_load_tree(s->r, id, &t)))
		return rc;
	for (size_t i = 0; i < t.n && !rc; i++) {
		const struct bw_node *n = &t.nodes[i];
		if (n->type == BW_NODE_FILE) {
			c[C_FILES]++;
			c[C_BYTES] += n->size;
			rc = count_file(s, n);
		} else if (n->type == BW_NODE_DIR) {
			c[C_DIRS]++;
			rc = stat_tree(s, &n->subtree, depth + 1, c);
		} else {
			c[C_OTHERS]++;
		}
	}
	bw_tree_release(&t);
	if (!rc && (rc = cli_idmap_put(&s->trees, id, c)) > 0)
		rc = 0;
	for (int k = 0; k < 4 && !rc; k++)
		out[k] += c[k];
	return rc;
}

struct repo_totals {
	uint64_t packs, pack_bytes, snapshots;
	uint64_t blobs, blob_raw, blob_stored;
	struct cli_idmap groups;
};

static int on_pack(void *arg, const char *name, uint64_t size)
{
	struct repo_totals *t = arg;
	(void)name;
	t->packs++;
	t->pack_bytes += size;
	return 0;
}

static int on_index_entry(void *arg, const struct bw_index_entry *e)
{
	struct repo_totals *t = arg;
	uint64_t add;
	int rc = stored_once(&t->groups, e, &add);
	if (rc)
		return rc;
	t->blobs++;
	t->blob_raw += e->raw_length;
	t->blob_stored += add;
	return 0;
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

static json_t *json_totals(const struct repo_totals *t)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}",
	        "snapshots", (json_int_t)t->snapshots, "packs", (json_int_t)t->packs,
	        "stored_size", (json_int_t)t->pack_bytes, "blobs", (json_int_t)t->blobs,
	        "blobs_plaintext_size", (json_int_t)t->blob_raw,
	        "blobs_stored_size", (json_int_t)t->blob_stored);
}

static void print_json(const struct stats *s, const struct bw_snapshot *v,
                       uint64_t (*per)[4], size_t n, const uint64_t tot[4],
                       const struct repo_totals *rt)
{
	json_t *snaps = json_array();
	for (size_t i = 0; i < n; i++) {
		char hex[2 * BW_ID_LEN + 1];
		bw_id_hex(&v[i].id, hex);
		json_array_append_new(snaps, json_pack("{s:s,s:I,s:I,s:I,s:I}",
		        "id", hex, "files", (json_int_t)per[i][C_FILES],
		        "dirs", (json_int_t)per[i][C_DIRS], "others", (json_int_t)per[i][C_OTHERS],
		        "restore_size", (json_int_t)per[i][C_BYTES]));
	}
	json_t *j = json_pack("{s:s,s:I,s:o,s:I,s:I,s:I,s:I,s:o}",
	        "mode", mode_names[s->mode], "snapshots_processed", (json_int_t)n,
	        "snapshots", snaps, "total_file_count", (json_int_t)tot[C_FILES],
	        "total_dir_count", (json_int_t)tot[C_DIRS],
	        "total_other_count", (json_int_t)tot[C_OTHERS],
	        "total_size", (json_int_t)tot[C_BYTES], "repository", json_totals(rt));
	if (s->mode == RAW_DATA) {
		json_object_set_new(j, "data_blobs", json_integer((json_int_t)s->nblobs[0]));
		json_object_set_new(j, "tree_blobs", json_integer((json_int_t)s->nblobs[1]));
		json_object_set_new(j, "data_plaintext_size", json_integer((json_int_t)s->raw[0]));
		json_object_set_new(j, "data_stored_size", json_integer((json_int_t)s->stored[0]));
		json_object_set_new(j, "tree_plaintext_size", json_integer((json_int_t)s->raw[1]));
		json_object_set_new(j, "tree_stored_size", json_integer((json_int_t)s->stored[1]));
		json_object_set_new(j, "missing_blobs", json_integer((json_int_t)s->missing));
		json_object_set_new(j, "compression_ratio", json_real(ratio(s->raw[0] + s->raw[1],
		                                                             s->stored[0] + s->stored[1])));
		json_object_set_new(j, "dedup_ratio", json_real(ratio(tot[C_BYTES], s->raw[0])));
	} else if (s->mode == BLOBS_PER_FILE) {
		json_object_set_new(j, "unique_files", json_integer((json_int_t)s->uf_n));
		json_object_set_new(j, "unique_files_blobs", json_integer((json_int_t)s->uf_blobs));
		json_object_set_new(j, "unique_files_size", json_integer((json_int_t)s->uf_bytes));
		json_object_set_new(j, "blobs_per_file", json_real(ratio(s->uf_blobs, s->uf_n)));
	}
	cli_json_print(j);
}

static void print_text(const struct stats *s, const struct bw_snapshot *v,
                       uint64_t (*per)[4], size_t n, const uint64_t tot[4],
                       const struct repo_totals *rt)
{
	char b1[32], b2[32];
	printf("Stats in %s mode, %zu snapshot%s:\n", mode_names[s->mode], n, n == 1 ? "" : "s");
	for (size_t i = 0; s->mode == RESTORE_SIZE && i < n; i++) {
		char sh[9], ts[40];
		cli_short_id(&v[i].id, sh);
		bw_time_format_local(v[i].time_ns, ts);
		bw_fmt_bytes(per[i][C_BYTES], b1);
		printf("  %s  %s  %llu files, %llu dirs, %llu others, %s\n", sh, ts,
		       (unsigned long long)per[i][C_FILES], (unsigned long long)per[i][C_DIRS],
		       (unsigned long long)per[i][C_OTHERS], b1);
	}
	bw_fmt_bytes(tot[C_BYTES], b1);
	printf("Total file count:    %llu\n", (unsigned long long)tot[C_FILES]);
	printf("Total restore size:  %s\n", b1);
	if (s->mode == RAW_DATA) {
		for (int t = 0; t < 2; t++) {
			bw_fmt_bytes(s->raw[t], b1);
			bw_fmt_bytes(s->stored[t], b2);
			printf("Distinct %s blobs: %llu, %s plaintext, %s stored\n",
			       t ? "tree" : "data", (unsigned long long)s->nblobs[t], b1, b2);
		}
		printf("Compression ratio:   %.2fx\n", ratio(s->raw[0] + s->raw[1],
		                                               s->stored[0] + s->stored[1]));
		printf("Dedup ratio:         %.2fx\n", ratio(tot[C_BYTES], s->raw[0]));
		if (s->missing)
			printf("Missing blobs:       %llu (not in the index: run `bulwark check`)\n",
			       (unsigned long long)s->missing);
	} else if (s->mode == BLOBS_PER_FILE) {
		bw_fmt_bytes(s->uf_bytes, b1);
		printf("Distinct files:      %llu\n", (unsigned long long)s->uf_n);
		printf("Their blobs:         %llu\n", (unsigned long long)s->uf_blobs);
		printf("Their size:          %s\n", b1);
		printf("Blobs per file:      %.2f\n", ratio(s->uf_blobs, s->uf_n));
	}
	bw_fmt_bytes(rt->pack_bytes, b1);
	bw_fmt_bytes(rt->blob_raw, b2);
	printf("\nRepository:\n");
	printf("  Snapshots:         %llu\n", (unsigned long long)rt->snapshots);
	printf("  Pack files:        %llu, %s stored\n", (unsigned long long)rt->packs, b1);
	printf("  Blobs in index:    %llu, %s plaintext\n", (unsigned long long)rt->blobs, b2);
}

/* Snapshots named on the command line, or all (from host). */
static int pick(struct bw_repo *r, char **ids, int nids, const char *host,
                struct bw_snapshot **v, size_t *n)
{
	int rc = 0;
	*n = 0;
	if (!nids) {
		if ((rc = bw_repo_snapshots(r, v, n)))
			return rc;
		size_t k = 0;
		for (size_t i = 0; i < *n; i++) {
			if (!host || !strcmp((*v)[i].hostname, host))
				(*v)[k++] = (*v)[i];
			else
				bw_snapshot_release(&(*v)[i]);
		}
		*n = k;
		return 0;
	}
	if (!(*v = calloc((size_t)nids, sizeof **v)))
		return BW_ENOMEM;
	for (; *n < (size_t)nids && !rc; (*n)++)
		if ((rc = bw_repo_find_snapshot(r, ids[*n], host, NULL, &(*v)[*n])))
			break;
	return rc;
}

static int parse_mode(const char *m, enum mode *out)
{
	for (size_t i = 0; i < sizeof mode_names / sizeof *mode_names; i++) {
		if (!strcmp(m, mode_names[i])) {
			*out = (enum mode)i;
			return 0;
		}
	}
	return -1;
}

static int totals(struct bw_repo *r, struct repo_totals *rt)
{
	struct bw_snapshot *v;
	size_t n;
	int rc = bw_repo_snapshots(r, &v, &n);
	if (rc)
		return rc;
	bw_snapshots_free(v, n);
	rt->snapshots = n;
	if ((rc = bw_be_list(r->be, BW_OBJ_PACK, on_pack, rt)))
		return rc;
	return bw_index_each(r->index, on_index_entry, rt);
}

int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{"mode", required_argument, NULL, 1},
		{"host", required_argument, NULL, 2},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stats s;
	struct repo_totals rt;
	struct bw_snapshot *v = NULL;
	uint64_t (*per)[4] = NULL, tot[4] = {0, 0, 0, 0};
	size_t n = 0;
	const char *host = NULL;
	int c, r;
	memset(&s, 0, sizeof s);
	memset(&rt, 0, sizeof rt);
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case 1:
			if (parse_mode(optarg, &s.mode))
				return cli_usage_error("stats", "--mode is restore-size, raw-data or blobs-per-file");
			break;
		case 2: host = optarg; break;
		case 'h': help(); return EXIT_OK;
		default: return cli_usage_error("stats", "unknown option");
		}
	}
	if ((r = cli_open_repo("stats", &s.r)))
		goto out;
	if ((r = bw_repo_load_index(s.r)) ||
	    (r = pick(s.r, argv + optind, argc - optind, host, &v, &n)))
		goto out;
	if (!(per = calloc(n ? n : 1, sizeof *per))) {
		r = BW_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && !r; i++) {
		r = stat_tree(&s, &v[i].tree, 0, per[i]);
		for (int k = 0; k < 4; k++)
			tot[k] += per[i][k];
	}
	if (r || (r = totals(s.r, &rt)))
		goto out;
	if (g.json)
		print_json(&s, v, per, n, tot, &rt);
	else if (!g.quiet)
		print_text(&s, v, per, n, tot, &rt);
	if (fflush(stdout))
		r = bw_errf(BW_EIO, "cannot write to standard output");
out:
	free(per);
	bw_snapshots_free(v, n);
	cli_idmap_release(&s.trees);
	cli_idmap_release(&s.blobs);
	cli_idmap_release(&s.contents);
	cli_idmap_release(&s.groups);
	cli_idmap_release(&rt.groups);
	if (s.r)
		bw_repo_close(s.r);
	if (r)
		return cli_fail("stats", r);
	if (s.missing) {
		fprintf(stderr, "bulwark stats: %llu blobs are not in the index; run `bulwark check`\n",
		        (unsigned long long)s.missing);
		return EXIT_PARTIAL;
	}
	return EXIT_OK;
}
