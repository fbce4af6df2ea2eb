/* The guard's two in-memory tables, both open addressing with linear
 * probing: inodes it has seen (write counts, vault state) and path hashes
 * to inodes.  Callers hold g->lock.  Memory: 48 bytes per inode, 24 per
 * path, so a tree of 100,000 files costs under 8 MB. */
#include "guard_int.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static int inode_grow(struct bw_guard *g)
{
	size_t nc = g->inode_cap ? g->inode_cap * 2 : 4096;
	struct gi_inode *nv = calloc(nc, sizeof *nv);
	if (!nv)
		return BW_ENOMEM;
	for (size_t i = 0; i < g->inode_cap; i++) {
		struct gi_inode *e = &g->inodes[i];
		if (!e->ino)
			continue;
		size_t j = mix64(e->ino) & (nc - 1);
		while (nv[j].ino)
			j = (j + 1) & (nc - 1);
		nv[j] = *e;
	}
	free(g->inodes);
	g->inodes = nv;
	g->inode_cap = nc;
	return 0;
}

struct gi_inode *gi_inode_get(struct bw_guard *g, uint64_t ino, int create)
{
	if (!ino)
		return NULL;
	if (create && (g->inode_n + 1) * 10 >= g->inode_cap * 7 &&
	    inode_grow(g))
		return NULL;
	if (!g->inode_cap)
		return NULL;
	size_t j = mix64(ino) & (g->inode_cap - 1);
	while (g->inodes[j].ino) {
		if (g->inodes[j].ino == ino)
			return &g->inodes[j];
		j = (j + 1) & (g->inode_cap - 1);
	}
	if (!create)
		return NULL;
	memset(&g->inodes[j], 0, sizeof g->inodes[j]);
	g->inodes[j].ino = ino;
	g->inode_n++;
	return &g->inodes[j];
}

uint64_t gi_path_hash(const char *path)
{
	/* FNV-1a, then mixed; 0 is reserved for free slots */
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	h = mix64(h);
	return h ? h : 1;
}

static int path_grow(struct bw_guard *g)
{
	size_t nc = g->path_cap ? g->path_cap * 2 : 4096;
	struct gi_pathent *nv = calloc(nc, sizeof *nv);
	if (!nv)
		return BW_ENOMEM;
	for (size_t i = 0; i < g->path_cap; i++) {
		struct gi_pathent *e = &g->paths[i];
		if (!e->h)
			continue;
		size_t j = e->h & (nc - 1);
		while (nv[j].h)
			j = (j + 1) & (nc - 1);
		nv[j] = *e;
	}
	free(g->paths);
	g->paths = nv;
	g->path_cap = nc;
	return 0;
}

void gi_path_set(struct bw_guard *g, const char *path, dev_t dev, uint64_t ino)
{
	uint64_t h = gi_path_hash(path);
	if ((g->path_n + 1) * 10 >= g->path_cap * 7 && path_grow(g))
		return;
	size_t j = h & (g->path_cap - 1);
	while (g->paths[j].h && g->paths[j].h != h)
		j = (j + 1) & (g->path_cap - 1);
	if (!g->paths[j].h)
		g->path_n++;
	g->paths[j].h = h;
	g->paths[j].ino = ino;
	g->paths[j].dev = dev;
}

uint64_t gi_path_take(struct bw_guard *g, const char *path, dev_t *dev)
{
	if (!g->path_cap)
		return 0;
	uint64_t h = gi_path_hash(path);
	size_t mask = g->path_cap - 1, j = h & mask;
	while (g->paths[j].h && g->paths[j].h != h)
		j = (j + 1) & mask;
	if (!g->paths[j].h)
		return 0;
	uint64_t ino = g->paths[j].ino;
	if (dev)
		*dev = g->paths[j].dev;
	/* backward-shift deletion keeps probe chains intact */
	size_t hole = j;
	for (size_t k = (j + 1) & mask; g->paths[k].h; k = (k + 1) & mask) {
		size_t home = g->paths[k].h & mask;
		if ((k > hole && (home <= hole || home > k)) ||
		    (k < hole && (home <= hole && home > k))) {
			g->paths[hole] = g->paths[k];
			hole = k;
		}
	}
	memset(&g->paths[hole], 0, sizeof g->paths[hole]);
	g->path_n--;
	return ino;
}
