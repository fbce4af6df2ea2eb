/* bulwark init */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
	printf(
"Usage: bulwark init -r DIR [OPTIONS]\n"
"\n"
"Create a new, empty repository in DIR (created if missing; refused if a\n"
"repository is already there).  The passphrase is asked twice on a\n"
"terminal, or read from --password-file / BULWARK_PASSWORD_FILE /\n"
"BULWARK_PASSWORD.  Keep it: without it the data cannot be read.\n"
"\n"
"Options:\n"
"  --chunk-min SIZE     smallest chunk (default 512K)\n"
"  --chunk-avg SIZE     average chunk, a power of two (default 1M)\n"
"  --chunk-max SIZE     largest chunk (default 4M, at most 16M)\n"
"  --compression N      zstd level for data, 1-19, or 'off' (default 3)\n"
"  --kdf-mem SIZE       Argon2id memory (default 32M)\n"
"  --kdf-ops N          Argon2id passes (default 3)\n"
"  --format N           repository format version, 1-3 (default 3); older\n"
"                       versions are for sharing with older bulwark builds\n"
"  --json               print {\"id\", \"location\"}\n"
"\n"
"SIZE takes K, M or G suffixes (powers of 1024).\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno)
		return -1;
	uint64_t m = 1;
	if (*end == 'K' || *end == 'k')
		m = 1024, end++;
	else if (*end == 'M' || *end == 'm')
		m = 1024 * 1024, end++;
	else if (*end == 'G' || *end == 'g')
		m = 1024ull * 1024 * 1024, end++;
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end || v > UINT64_MAX / m)
		return -1;
	*out = v * m;
	return 0;
}

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"chunk-min", required_argument, NULL, 1},
		{"chunk-avg", required_argument, NULL, 2},
		{"chunk-max", required_argument, NULL, 3},
		{"compression", required_argument, NULL, 4},
		{"kdf-mem", required_argument, NULL, 5},
		{"kdf-ops", required_argument, NULL, 6},
		{"format", required_argument, NULL, 7},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct bw_init_opts o;
	memset(&o, 0, sizeof o);
	int c;
	uint64_t v;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case 1: case 2: case 3: case 5:
			if (parse_size(optarg, &v) || v > UINT32_MAX * 4ull)
				return cli_usage_error("init", "bad size '%s'", optarg);
			if (c == 1) o.chunker.min = (uint32_t)v;
			if (c == 2) o.chunker.avg = (uint32_t)v;
			if (c == 3) o.chunker.max = (uint32_t)v;
			if (c == 5) o.kdf_mem = (size_t)v;
			break;
		case 4:
			if (!strcmp(optarg, "off"))
				o.compression = -1;
			else if (parse_size(optarg, &v) || v < 1 || v > 19)
				return cli_usage_error("init", "compression must be 1-19 or off");
			else
				o.compression = (int)v;
			break;
		case 6:
			if (parse_size(optarg, &v) || v < 1 || v > 64)
				return cli_usage_error("init", "kdf-ops must be 1-64");
			o.kdf_ops = v;
			break;
		case 7:
			if (parse_size(optarg, &v) || v < 1 || v > BW_REPO_VERSION)
				return cli_usage_error("init", "format must be 1-%d", BW_REPO_VERSION);
			o.version = (int)v;
			break;
		case 'h': help(); return EXIT_OK;
		default: return cli_usage_error("init", "unknown option");
		}
	}
	if (o.chunker.min || o.chunker.avg || o.chunker.max) {
		if (!o.chunker.min) o.chunker.min = BW_CHUNK_MIN_DEFAULT;
		if (!o.chunker.avg) o.chunker.avg = BW_CHUNK_AVG_DEFAULT;
		if (!o.chunker.max) o.chunker.max = BW_CHUNK_MAX_DEFAULT;
	}
	if (optind < argc)
		return cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
	const char *loc = g.repo ? g.repo : getenv("BULWARK_REPO");
	if (!loc || !*loc)
		return cli_usage_error("init", "no repository: give -r DIR or set BULWARK_REPO");
	char *pass = NULL;
	size_t len = 0;
	int r = cli_get_pass(1, "New passphrase: ", &pass, &len);
	if (r)
		return cli_fail("init", r);
	struct bw_repo *repo = NULL;
	r = bw_repo_init(loc, pass, len, &o, &repo);
	cli_pass_free(pass, len);
	if (r)
		return cli_fail("init", r);
	char id[2 * BW_ID_LEN + 1];
	bw_repo_id_hex(repo, id);
	if (g.json)
		cli_json_print(json_pack("{s:s,s:s}", "id", id, "location", loc));
	else if (!g.quiet)
		printf("created repository %.8s at %s\n", id, loc);
	bw_repo_close(repo);
	return EXIT_OK;
}
