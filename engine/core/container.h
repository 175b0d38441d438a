/* SPDX-License-Identifier: MIT */
/*
 * tsguard: container and pod identity from a cgroup v2 path (rules.md
 * "Namespaces and containers"; the table of layouts is in docs/rules.md).
 */
#ifndef TSG_CONTAINER_H
#define TSG_CONTAINER_H

#include "tsg.h"

/* A container id is 64 lowercase hex digits; a pod UID at most 64 characters. */
#define TSG_CONTAINER_ID_LEN 64
#define TSG_POD_UID_MAX	     64
/* The shortest container id prefix a rule may match on (as `docker ps` shows). */
#define TSG_CONTAINER_PREFIX_MIN 12

/*
 * Parses the container id and the Kubernetes pod UID out of a cgroup v2
 * path. id (idlen > TSG_CONTAINER_ID_LEN) and pod (podlen > TSG_POD_UID_MAX)
 * receive "" for what the path does not name. The container is the innermost
 * container component of the path; when the path names a pod, only a
 * container below the pod counts. Pod UIDs are written with dashes
 * (`kubepods-pod1a2b_3c4d.slice` is pod 1a2b-3c4d).
 * Returns 0 when a container or a pod was found, -ENOENT when neither,
 * -EINVAL for a NULL path or buffers that are too small.
 */
int tsg_container_from_cgroup(const char *path, char *id, size_t idlen, char *pod, size_t podlen);

/*
 * Sets a socket's cgroup path (interned) and, from it, its container and pod
 * (interned, NULL when none); marks cgroup, container and pod known. A NULL
 * path marks nothing. -ENOMEM when the intern table is full (the fields stay
 * unknown).
 */
int tsg_sockinfo_set_cgroup(struct tsg_sockinfo *si, const char *path);

#endif
