/* SPDX-License-Identifier: MIT */
/*
 * tsguard: container and pod identity parsed from a cgroup v2 path.
 *
 * A path is read component by component. A component names a container
 * when it is a runtime's scope or directory with a 64-hex-digit id:
 *   docker-ID[.scope]          Docker (systemd driver), dockershim, cri-dockerd
 *   docker/ID                  Docker (cgroupfs driver)
 *   cri-containerd-ID[.scope]  containerd (CRI)
 *   crio-ID[.scope]            CRI-O (crio-conmon-ID is its monitor, not the container)
 *   libpod-ID[.scope]          Podman (libpod-conmon-ID is its monitor)
 *   nerdctl-ID[.scope]         nerdctl
 *   ID right below a pod       Kubernetes, cgroupfs driver with Docker or containerd
 * A component names a pod when it is
 *   [kubelet-]kubepods[-QOS]-podUID.slice  (systemd driver, '_' in the UID)
 *   podUID below a kubepods component      (cgroupfs driver)
 * The container is the innermost container component; when the path names
 * a pod, a container component above the pod (e.g. the node of a kind
 * cluster) does not count.
 */
#include "container.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool hex_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool has_prefix(const char *s, size_t n, const char *p, size_t *plen)
{
	*plen = strlen(p);
	return n >= *plen && !memcmp(s, p, *plen);
}

static bool has_suffix(const char *s, size_t n, const char *x)
{
	size_t xn = strlen(x);

	return n >= xn && !memcmp(s + n - xn, x, xn);
}

static bool is_word(const char *s, size_t n, const char *w)
{
	return n == strlen(w) && !memcmp(s, w, n);
}

/* The container id a component names (after `prev`, right below a pod or
 * not), or NULL. */
static const char *component_id(const char *c, size_t n, const char *prev, size_t pn,
				bool below_pod)
{
	static const char *const prefixes[] = { "docker-", "cri-containerd-", "crio-", "libpod-",
						"nerdctl-" };
	size_t pl;

	if (has_suffix(c, n, ".scope"))
		n -= strlen(".scope");
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (has_prefix(c, n, prefixes[i], &pl)) {
			bool ok = n - pl == TSG_CONTAINER_ID_LEN && hex_run(c + pl, n - pl);

			return ok ? c + pl : NULL;
		}
	if (n == TSG_CONTAINER_ID_LEN && hex_run(c, n) &&
	    (below_pod || (prev && is_word(prev, pn, "docker"))))
		return c;
	return NULL;
}

/* Copies a pod UID (hex digits with '-' or '_', '_' written as '-'); false
 * when it is not one. */
static bool copy_uid(const char *u, size_t n, char *pod)
{
	if (!n || n > TSG_POD_UID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (u[i] != '-' && u[i] != '_' && !hex_run(u + i, 1))
			return false;
		pod[i] = u[i] == '_' ? '-' : u[i];
	}
	pod[n] = 0;
	return true;
}

/* Does the component name a pod? Then its UID is in pod. */
static bool component_pod(const char *c, size_t n, bool kube, char *pod)
{
	const char *dash;
	size_t pl;

	if (has_suffix(c, n, ".slice")) {
		n -= strlen(".slice");
		if (!has_prefix(c, n, "kubepods-", &pl) &&
		    !has_prefix(c, n, "kubelet-kubepods-", &pl))
			return false;
		dash = memrchr(c, '-', n);
		if (!dash || !has_prefix(dash + 1, n - (size_t)(dash + 1 - c), "pod", &pl))
			return false;
		dash += 1 + pl;
		return copy_uid(dash, n - (size_t)(dash - c), pod);
	}
	return kube && has_prefix(c, n, "pod", &pl) && copy_uid(c + pl, n - pl, pod);
}

int tsg_container_from_cgroup(const char *path, char *id, size_t idlen, char *pod, size_t podlen)
{
	const char *c = path, *prev = NULL;
	size_t pn = 0;
	bool kube = false, below_pod = false;
	char uid[TSG_POD_UID_MAX + 1];

	if (!path || !id || !pod || idlen <= TSG_CONTAINER_ID_LEN || podlen <= TSG_POD_UID_MAX)
		return -EINVAL;
	id[0] = pod[0] = 0;
	while (*c) {
		size_t n = strcspn(c, "/");
		const char *cid;

		if (n) {
			if (component_pod(c, n, kube, uid)) {
				memcpy(pod, uid, strlen(uid) + 1);
				id[0] = 0; /* a container above the pod is not the pod's */
				below_pod = true;
			} else if ((cid = component_id(c, n, prev, pn, below_pod))) {
				memcpy(id, cid, TSG_CONTAINER_ID_LEN);
				id[TSG_CONTAINER_ID_LEN] = 0;
				below_pod = false;
			} else {
				kube |= has_prefix(c, n, "kubepods", &(size_t){0});
				below_pod = false;
			}
			prev = c;
			pn = n;
		}
		c += n;
		if (*c == '/')
			c++;
	}
	return id[0] || pod[0] ? 0 : -ENOENT;
}

int tsg_sockinfo_set_cgroup(struct tsg_sockinfo *si, const char *path)
{
	char id[TSG_CONTAINER_ID_LEN + 1], pod[TSG_POD_UID_MAX + 1];
	const char *cg, *ic = NULL, *ip = NULL;

	if (!path)
		return 0;
	cg = tsg_intern(path);
	if (!cg)
		return -ENOMEM;
	if (tsg_container_from_cgroup(path, id, sizeof(id), pod, sizeof(pod)) == 0) {
		if ((id[0] && !(ic = tsg_intern(id))) || (pod[0] && !(ip = tsg_intern(pod))))
			return -ENOMEM;
	}
	si->cgroup = cg;
	si->container = ic;
	si->pod = ip;
	si->have |= TSG_HAVE(TSG_SF_CGROUP) | TSG_HAVE(TSG_SF_CONTAINER) | TSG_HAVE(TSG_SF_POD);
	return 0;
}
