/* SPDX-License-Identifier: MIT */
/*
 * tsguard: a tracked socket as the engine stores it (64 bytes).
 *
 * The attributes of struct tsg_sockinfo, packed: comm interned (tsg_intern)
 * as a pointer, IPv4 addresses in 4 bytes each; a socket with an IPv6
 * address keeps both addresses in a record of a side pool (SE_V6), a socket
 * with a cgroup, netns name, container or pod an index of those four
 * (SE_EXT): one record for every distinct four, shared by the sockets that
 * have them (most sockets of a host share a few), counted and given back
 * with the last of them.
 * sock_unpack gives back exactly the struct tsg_sockinfo that merging the
 * same events field by field (tsg_sockinfo_copy) would have built.
 */
#ifndef TSG_SOCKPACK_H
#define TSG_SOCKPACK_H

#include "pool.h"
#include "tsg.h"

#define SE_V6  0x8000u /* in sock_ent.have: la is an index in side->v6 */
#define SE_EXT 0x4000u /* in sock_ent.have: ext is an index in side->ext */

struct sock_addr6 {
	uint8_t laddr[16], raddr[16];
};

struct sock_ext { /* all four interned; shared */
	const char *cgroup, *netns_name, *container, *pod;
	uint32_t refs; /* sockets that hold it */
	uint32_t next; /* next record in its hash chain, 0: none */
};

struct sock_side {
	struct pool v6;	       /* struct sock_addr6 */
	struct pool ext;       /* struct sock_ext, one per distinct four */
	uint32_t *ext_bucket;  /* first record of each hash chain, 0: none */
	uint32_t ext_nbuckets; /* a power of two (at least the records held), 0: none yet */
};

struct sock_ent {
	uint64_t sk;
	uint64_t since;
	const char *comm; /* interned; NULL while not known */
	uint32_t ext;	  /* SE_EXT: index in side->ext */
	uint32_t netns;
	uint32_t la, ra; /* IPv4 (the last 4 bytes of ::ffff:a.b.c.d), or SE_V6 */
	uint32_t pid, uid;
	uint16_t lport, rport;
	uint16_t have; /* TSG_HAVE bits, SE_V6, SE_EXT */
	uint8_t family, state;
	uint32_t memb; /* first record of the socket (engine.c), 0: none */
};

/* Merges the fields that `in` knows (tsg_sockinfo_copy with every field).
 * Returns 0, or -ENOMEM when an IPv6 address or comm could not be stored
 * (that field stays unknown; an interning failure counts in
 * tsg_intern_dropped). */
int sock_pack_merge(struct sock_side *side, struct sock_ent *s, const struct tsg_sockinfo *in);
void sock_unpack(const struct sock_side *side, const struct sock_ent *s, struct tsg_sockinfo *out);
/* Gives back what the socket holds in the side pools. */
void sock_pack_release(struct sock_side *side, struct sock_ent *s);
void sock_side_init(struct sock_side *side);
void sock_side_fini(struct sock_side *side);

#endif
