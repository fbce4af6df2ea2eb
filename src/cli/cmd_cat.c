/* bulwark cat */
#include "cli.h"

#include <string.h>
#include <unistd.h>

static void help(void)
{
	printf(
"Usage: bulwark cat TYPE [NAME]\n"
"\n"
"Print one repository object, decrypted where it is encrypted, for\n"
"debugging.  TYPE is one of:\n"
"  config              the repository's configuration (plaintext JSON)\n"
"  key NAME            a key file (JSON; its payload stays sealed)\n"
"  snapshot NAME       a snapshot (JSON); NAME may be 'latest' or a prefix\n"
"  index NAME          an index file (binary; see repo-format.md)\n"
"  lock NAME, plan NAME\n"
"  pack NAME           a pack file exactly as stored\n"
"  blob ID             a blob's plaintext (file data or a tree)\n"
"  tree ID|SNAPSHOT    a tree listed as JSON lines, one per entry\n"
"Binary output is written as is: redirect it to a file.\n");
}

static int print_tree(struct bw_repo *repo, const struct bw_id *id)
{
	struct bw_tree t;
	int r = bw_repo_load_tree(repo, id, &t);
	if (r)
		return r;
	for (size_t i = 0; i < t.n; i++) {
		const struct bw_node *n = &t.nodes[i];
		char hex[2 * BW_ID_LEN + 1];
		json_t *o = json_pack("{s:o,s:i,s:i,s:i,s:i,s:I,s:I}",
		        "name", cli_json_str_n(n->name, n->name_len), "type", n->type,
		        "mode", (int)n->mode, "uid", (int)n->uid, "gid", (int)n->gid,
		        "size", (json_int_t)n->size, "mtime_ns", (json_int_t)n->mtime_ns);
		if (n->type == BW_NODE_DIR) {
			bw_id_hex(&n->subtree, hex);
			json_object_set_new(o, "subtree", json_string(hex));
		}
		if (n->type == BW_NODE_SYMLINK)
			json_object_set_new(o, "target", cli_json_str_n(n->target, n->target_len));
		if (n->ncontent) {
			json_t *a = json_array();
			for (size_t k = 0; k < n->ncontent; k++) {
				bw_id_hex(&n->content[k], hex);
				json_array_append_new(a, json_string(hex));
			}
			json_object_set_new(o, "content", a);
		}
		cli_json_print(o);
	}
	bw_tree_release(&t);
	return 0;
}

int cmd_cat(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		if (c == 'h') {
			help();
			return EXIT_OK;
		}
		return cli_usage_error("cat", "unknown option");
	}
	if (optind >= argc)
		return cli_usage_error("cat", "missing TYPE");
	const char *type = argv[optind];
	const char *name = optind + 1 < argc ? argv[optind + 1] : "config";
	if (strcmp(type, "config") && optind + 1 >= argc)
		return cli_usage_error("cat", "missing NAME for %s", type);
	struct bw_repo *repo;
	int r = cli_open_repo("cat", &repo);
	if (r)
		return cli_fail("cat", r);
	struct bw_buf out;
	bw_buf_init(&out, 0);
	struct bw_id id;
	if (!strcmp(type, "blob") || !strcmp(type, "tree")) {
		struct bw_snapshot s;
		if (bw_id_parse(name, &id)) {
			if ((r = bw_repo_find_snapshot(repo, name, NULL, NULL, &s)))
				goto out;
			id = s.tree;
			bw_snapshot_release(&s);
		}
		if (!strcmp(type, "tree")) {
			r = print_tree(repo, &id);
			goto out;
		}
		r = bw_repo_load_blob(repo, &id, &out);
	} else if (!strcmp(type, "snapshot") && bw_id_parse(name, &id)) {
		struct bw_snapshot s;
		char hex[2 * BW_ID_LEN + 1];
		if ((r = bw_repo_find_snapshot(repo, name, NULL, NULL, &s)))
			goto out;
		bw_id_hex(&s.id, hex);
		bw_snapshot_release(&s);
		r = bw_repo_cat(repo, type, hex, &out);
	} else {
		r = bw_repo_cat(repo, type, name, &out);
	}
	if (!r && bw_write_full(1, out.data, out.len))
		r = BW_EIO;
out:
	bw_buf_release(&out);
	bw_repo_close(repo);
	return r ? cli_fail("cat", r) : EXIT_OK;
}
