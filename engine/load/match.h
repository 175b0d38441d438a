/* SPDX-License-Identifier: MIT */
/*
 * tsguard: user-space matchers (docs/rules.md "match").
 *
 * A field given as a set matches a value when the value matches some
 * positive item (or the set holds only exclusions) and no exclusion. A field
 * whose value is unknown (not in info.have) matches only a set that is empty
 * or holds only exclusions.
 */
#ifndef TSG_MATCH_H
#define TSG_MATCH_H

#include "ruleset.h"

bool tsg_portset_match(const struct tsg_portset *s, uint16_t port);
bool tsg_cidrset_match(const struct tsg_cidrset *s, const uint8_t addr[16]);
bool tsg_uidset_match(const struct tsg_uidset *s, uint32_t uid);
/* comm: exact strings and regexes (cached per comm). */
bool tsg_commset_match(const struct tsg_strset *s, const char *comm);
/* cgroup: path prefixes on '/' boundaries ("/a/b" matches "/a/b" and "/a/b/c"). */
bool tsg_cgroupset_match(const struct tsg_strset *s, const char *cgroup);

/* netns: an item matches the socket's inode, or (a NAME) its netns_name. */
bool tsg_netnsset_match(const struct tsg_netnsset *s, uint32_t inode, const char *name);
/* container (prefix) and pod (exact): a NULL id is "none". */
bool tsg_idset_match(const struct tsg_idset *s, const char *id, bool prefix);

/* Whole match block against what is known of a socket. */
bool tsg_match_sock(const struct tsg_match *m, const struct tsg_sockinfo *info);

/* Compiles a PCRE2 pattern (anchored as written, UTF off). On error returns
 * -EINVAL and sets *err_off and err_msg (buf). */
int tsg_regex_new(const char *pattern, struct tsg_regex **out, size_t *err_off,
		  char *err_msg, size_t err_len);
void tsg_regex_free(struct tsg_regex *re);
bool tsg_regex_match(struct tsg_regex *re, const char *subject);
/* Result cache counters of one regex (tests, metrics). */
void tsg_regex_stats(const struct tsg_regex *re, uint64_t *hits, uint64_t *misses,
		     uint64_t *clears, size_t *entries);

void tsg_match_fini(struct tsg_match *m);

#endif
