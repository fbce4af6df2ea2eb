/* bulwark key add|list|remove|passwd */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark key list\n"
"       bulwark key add [--new-password-file F]\n"
"       bulwark key remove KEY-ID\n"
"       bulwark key passwd [--new-password-file F]\n"
"\n"
"A repository's data keys are wrapped once per passphrase; each wrapping\n"
"is a key file.  'add' makes another passphrase work, 'remove' deletes one\n"
"(not the one in use, never the last), 'passwd' replaces the one in use.\n"
"The current passphrase opens the repository as usual; the new one comes\n"
"from --new-password-file, BULWARK_NEW_PASSWORD, or a prompt (twice).\n");
}

static int new_pass(const char *file, char **p, size_t *len)
{
	const char *saved = g.password_file;
	const char *env = getenv("BULWARK_NEW_PASSWORD");
	int r;
	if (file) {
		g.password_file = file;
		r = cli_get_pass(0, NULL, p, len);
		g.password_file = saved;
		return r;
	}
	if (env) {
		*len = strlen(env);
		*p = malloc(4096);
		if (!*p || *len >= 4096 || !*len) {
			free(*p);
			*p = NULL;
			return bw_errf(BW_EINVAL, "BULWARK_NEW_PASSWORD: empty or too long");
		}
		memcpy(*p, env, *len + 1);
		return 0;
	}
	g.password_file = NULL;
	char *oldenv = getenv("BULWARK_PASSWORD") ? strdup(getenv("BULWARK_PASSWORD")) : NULL;
	char *oldfile = getenv("BULWARK_PASSWORD_FILE") ? strdup(getenv("BULWARK_PASSWORD_FILE")) : NULL;
	unsetenv("BULWARK_PASSWORD");
	unsetenv("BULWARK_PASSWORD_FILE");
	r = cli_get_pass(1, "New passphrase: ", p, len);
	if (oldenv) { setenv("BULWARK_PASSWORD", oldenv, 1); bw_wipe(oldenv, strlen(oldenv)); free(oldenv); }
	if (oldfile) { setenv("BULWARK_PASSWORD_FILE", oldfile, 1); free(oldfile); }
	g.password_file = saved;
	return r;
}

int cmd_key(int argc, char **argv)
{
	static const struct option opts[] = {
		{"new-password-file", required_argument, NULL, 1},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *npf = NULL, *sub = NULL;
	int c;
	/* options may come before and after the subcommand */
	for (int pass = 0; pass < 2; pass++) {
		while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
			if (c == 1)
				npf = optarg;
			else if (c == 'h') {
				help();
				return EXIT_OK;
			} else
				return cli_usage_error("key", "unknown option");
		}
		if (pass == 0 && optind < argc)
			sub = argv[optind++];
	}
	if (!sub)
		return cli_usage_error("key", "missing subcommand (list, add, remove, passwd)");
	if (strcmp(sub, "list") && strcmp(sub, "add") && strcmp(sub, "remove") && strcmp(sub, "passwd"))
		return cli_usage_error("key", "unknown subcommand '%s'", sub);
	if (!strcmp(sub, "remove") && optind >= argc)
		return cli_usage_error("key", "remove needs a KEY-ID");
	struct bw_repo *repo;
	int r = cli_open_repo("key", &repo);
	if (r)
		return cli_fail("key", r);
	if (!strcmp(sub, "list")) {
		struct bw_key_info *v;
		size_t n;
		if (!(r = bw_key_list(repo, &v, &n))) {
			json_t *a = json_array();
			if (!g.json)
				printf(" %-8s  %-20s  %-12s  %s\n", "ID", "Host", "User", "Created");
			for (size_t i = 0; i < n; i++) {
				char ts[40];
				bw_time_format_local(v[i].created_ns, ts);
				if (g.json)
					json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:b}", "id", v[i].name,
					        "host", v[i].host, "user", v[i].user, "created", ts, "current", v[i].current));
				else
					printf("%c%.8s  %-20s  %-12s  %s\n", v[i].current ? '*' : ' ', v[i].name,
					       v[i].host, v[i].user, ts);
			}
			if (g.json)
				cli_json_print(a);
			else
				json_decref(a);
			free(v);
		}
	} else if (!strcmp(sub, "remove")) {
		if (!(r = bw_key_remove(repo, argv[optind])) && !g.quiet && !g.json)
			printf("removed key %s\n", argv[optind]);
	} else {
		char *p = NULL;
		size_t len = 0;
		char name[2 * BW_ID_LEN + 1];
		if (!(r = new_pass(npf, &p, &len))) {
			if (!strcmp(sub, "add"))
				r = bw_key_add(repo, p, len, name);
			else
				r = bw_key_passwd(repo, p, len);
			cli_pass_free(p, len);
			if (!r && !strcmp(sub, "add")) {
				if (g.json)
					cli_json_print(json_pack("{s:s}", "id", name));
				else if (!g.quiet)
					printf("added key %.8s\n", name);
			} else if (!r && !g.quiet && !g.json)
				printf("passphrase changed\n");
		}
	}
	bw_repo_close(repo);
	return r ? cli_fail("key", r) : EXIT_OK;
}
