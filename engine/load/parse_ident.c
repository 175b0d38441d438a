/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the match fields of a socket's namespace and container:
 * `netns: host | NAME | inode`, `container: ID | prefix | none`, `pod: UID`.
 *
 * `host` is the namespace tsguard runs in (/proc/self/ns/net at load); a
 * NAME is /run/netns/NAME, resolved to its inode at load (a reload resolves
 * it again). A NAME that does not exist at load is a warning, not an error:
 * namespaces come and go, and the rule matches the namespace by its name
 * once it exists.
 */
#include "container.h"
#include "load_priv.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *netns_dir = "/run/netns";

void tsg_load_set_netns_dir(const char *dir)
{
	netns_dir = dir ? dir : "/run/netns";
}

/* A name `ip netns add` accepts: one path component. */
static bool netns_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n && n < NAME_MAX && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

/* "4026531840" -> inode; false unless all digits, 1 to 4294967295 */
static bool inode_num(const char *s, uint32_t *out)
{
	size_t n = strlen(s);
	unsigned long long v;
	char *end;

	if (!n || n > 10 || strspn(s, "0123456789") != n)
		return false;
	v = strtoull(s, &end, 10);
	if (*end || !v || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* One netns item: the inode it denotes now (0: a name with no namespace). */
static int netns_item(struct ld *L, const struct ritem *it, struct tsg_netnsitem *out)
{
	char path[PATH_MAX];
	struct stat st;

	if (!strcmp(it->text, "host")) {
		if (stat("/proc/self/ns/net", &st) < 0) {
			ld_item_err(L, it, 0, "netns host: cannot read /proc/self/ns/net: %s",
				    strerror(errno));
			return -EINVAL;
		}
		out->inode = (uint32_t)st.st_ino;
		out->host = true;
		return 0;
	}
	if (inode_num(it->text, &out->inode))
		return 0;
	if (!netns_name_ok(it->text)) {
		ld_item_err(L, it, 0,
			    "bad netns \"%s\": expected host, a name under %s or an inode number",
			    it->text, netns_dir);
		return -EINVAL;
	}
	out->name = strdup(it->text);
	if (!out->name)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/%s", netns_dir, it->text);
	if (stat(path, &st) == 0) {
		out->inode = (uint32_t)st.st_ino;
		return 0;
	}
	ld_warn(L, it->f, it->node,
		"netns \"%s\" does not exist now (%s: %s); the rule matches it once a namespace of "
		"that name exists",
		it->text, path, strerror(errno));
	return 0;
}

int ld_conv_netns(struct ld *L, const struct ritems *in, struct tsg_netnsset *ns)
{
	int r = 0;

	ns->v = calloc(in->n, sizeof(*ns->v));
	if (!ns->v)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		const struct ritem *it = &in->v[i];
		struct tsg_netnsitem ni = {.neg = it->neg};
		int r1;

		if (!ld_no_regex(L, it, "netns")) {
			r = -EINVAL;
			continue;
		}
		r1 = netns_item(L, it, &ni);
		if (r1 == -ENOMEM)
			return r1;
		if (r1 < 0) {
			r = r1;
			continue;
		}
		ns->v[ns->n++] = ni;
	}
	return r;
}

/* A container id or prefix (lower-cased into out), or a pod UID; 0 or -EINVAL. */
static int id_check(struct ld *L, const struct ritem *it, bool container, char *out)
{
	size_t n = strlen(it->text);

	for (size_t i = 0; i <= n; i++)
		out[i] = (char)tolower((unsigned char)it->text[i]);
	if (container) {
		if (n > TSG_CONTAINER_ID_LEN || strspn(out, "0123456789abcdef") != n) {
			ld_item_err(L, it, 0,
				    "bad container \"%s\": expected a container id (hex digits), a "
				    "prefix of one, or none",
				    it->text);
			return -EINVAL;
		}
		if (n < TSG_CONTAINER_PREFIX_MIN) {
			ld_item_err(L, it, 0,
				    "container id prefix \"%s\" is too short: give at least %d "
				    "characters (as `docker ps` shows them)",
				    it->text, TSG_CONTAINER_PREFIX_MIN);
			return -EINVAL;
		}
		return 0;
	}
	if (!n || n > TSG_POD_UID_MAX || strspn(out, "0123456789abcdef-") != n) {
		ld_item_err(L, it, 0,
			    "bad pod \"%s\": expected a pod UID (e.g. "
			    "5f0c3b1e-8d2a-4c6f-9b7e-1a2b3c4d5e6f) or none",
			    it->text);
		return -EINVAL;
	}
	return 0;
}

int ld_conv_ids(struct ld *L, const struct ritems *in, const char *field, struct tsg_idset *ids)
{
	bool container = !strcmp(field, "container");
	int r = 0;

	ids->v = calloc(in->n, sizeof(*ids->v));
	if (!ids->v)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		const struct ritem *it = &in->v[i];
		char v[TSG_CONTAINER_ID_LEN + TSG_POD_UID_MAX + 2];

		if (!ld_no_regex(L, it, field)) {
			r = -EINVAL;
			continue;
		}
		ids->v[ids->n].neg = it->neg;
		if (!strcmp(it->text, "none")) {
			ids->n++;
			continue;
		}
		if (strlen(it->text) >= sizeof(v) || id_check(L, it, container, v) < 0) {
			if (strlen(it->text) >= sizeof(v))
				ld_item_err(L, it, 0, "bad %s \"%.20s...\": too long", field,
					    it->text);
			r = -EINVAL;
			continue;
		}
		ids->v[ids->n].s = strdup(v);
		if (!ids->v[ids->n].s)
			return -ENOMEM;
		ids->n++;
	}
	return r;
}
