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

static int path_grow(struct gi_pathmap *m)
{
	size_t nc = m->cap ? m->cap * 2 : 4096;
	struct gi_pathent *nv = calloc(nc, sizeof *nv);
	if (!nv)
		return BW_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct gi_pathent *e = &m->v[i];
		if (!e->h)
			continue;
		size_t j = e->h & (nc - 1);
		while (nv[j].h)
			j = (j + 1) & (nc - 1);
		nv[j] = *e;
	}
	free(m->v);
	m->v = nv;
	m->cap = nc;
	return 0;
}

void gi_path_set(struct gi_pathmap *m, const char *path, dev_t dev, uint64_t ino)
{
	uint64_t h = gi_path_hash(path);
	if ((m->n + 1) * 10 >= m->cap * 7 && path_grow(m))
		return;
	size_t j = h & (m->cap - 1);
	while (m->v[j].h && m->v[j].h != h)
		j = (j + 1) & (m->cap - 1);
	if (!m->v[j].h)
		m->n++;
	m->v[j].h = h;
	m->v[j].ino = ino;
	m->v[j].dev = dev;
}

uint64_t gi_path_take(struct gi_pathmap *m, const char *path, dev_t *dev)
{
	if (!m->cap)
		return 0;
	uint64_t h = gi_path_hash(path);
	size_t mask = m->cap - 1, j = h & mask;
	while (m->v[j].h && m->v[j].h != h)
		j = (j + 1) & mask;
	if (!m->v[j].h)
		return 0;
	uint64_t ino = m->v[j].ino;
	if (dev)
		*dev = m->v[j].dev;
	/* backward-shift deletion keeps probe chains intact */
	size_t hole = j;
	for (size_t k = (j + 1) & mask; m->v[k].h; k = (k + 1) & mask) {
		size_t home = m->v[k].h & mask;
		if ((k > hole && (home <= hole || home > k)) ||
		    (k < hole && (home <= hole && home > k))) {
			m->v[hole] = m->v[k];
			hole = k;
		}
	}
	memset(&m->v[hole], 0, sizeof m->v[hole]);
	m->n--;
	return ino;
}
