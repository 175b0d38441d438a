/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the container and pod parser (engine/core/container.c): one
 * entry per cgroup v2 path of each runtime, as the runtimes write them, and
 * lookalikes that are not containers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tsg_test_main.h"

#include "container.h"

#define ID_A "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
#define ID_B "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
#define ID_C "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6"
#define ID_D "18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4"
#define UID  "5f0c3b1e-8d2a-4c6f-9b7e-1a2b3c4d5e6f"
#define UID_ "5f0c3b1e_8d2a_4c6f_9b7e_1a2b3c4d5e6f"
#define KIND_POD                                                                                   \
	"/system.slice/docker-" ID_A ".scope/kubelet.slice/kubelet-kubepods.slice/"                \
	"kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" UID_ ".slice"

/* clang-format off */
static const struct {
	const char *what, *path, *id, *pod; /* id, pod: NULL when none */
} cases[] = {
	/* Docker */
	{ "docker, systemd driver", "/system.slice/docker-" ID_A ".scope", ID_A, NULL },
	{ "docker, cgroupfs driver", "/docker/" ID_A, ID_A, NULL },
	{ "docker, a sub-cgroup of the container",
	  "/system.slice/docker-" ID_A ".scope/system.slice/nginx.service", ID_A, NULL },
	{ "docker in docker: the inner container", "/system.slice/docker-" ID_A ".scope/docker/" ID_B,
	  ID_B, NULL },
	{ "rootless docker", "/user.slice/user-1000.slice/user@1000.service/docker.service/docker/" ID_C,
	  ID_C, NULL },
	/* containerd, CRI-O, Podman, nerdctl outside Kubernetes */
	{ "containerd CRI scope", "/system.slice/cri-containerd-" ID_B ".scope", ID_B, NULL },
	{ "cri-o scope", "/machine.slice/crio-" ID_C ".scope", ID_C, NULL },
	{ "podman", "/machine.slice/libpod-" ID_D ".scope", ID_D, NULL },
	{ "podman, the container's own cgroup", "/machine.slice/libpod-" ID_D ".scope/container", ID_D,
	  NULL },
	{ "rootless podman",
	  "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID_D ".scope", ID_D, NULL },
	{ "podman, cgroupfs manager", "/libpod_parent/libpod-" ID_D, ID_D, NULL },
	{ "nerdctl", "/system.slice/nerdctl-" ID_A ".scope", ID_A, NULL },
	/* Kubernetes, systemd driver */
	{ "k8s systemd, the contract's example",
	  "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b_3c4d.slice/"
	  "cri-containerd-" ID_B ".scope",
	  ID_B, "1a2b-3c4d" },
	{ "k8s systemd burstable, containerd",
	  "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	  ".slice/cri-containerd-" ID_B ".scope",
	  ID_B, UID },
	{ "k8s systemd besteffort, cri-o",
	  "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice/crio-" ID_C
	  ".scope",
	  ID_C, UID },
	{ "k8s systemd, cri-o's conmon is not the container",
	  "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
	  ".slice/crio-conmon-" ID_C ".scope",
	  NULL, UID },
	{ "k8s systemd guaranteed",
	  "/kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-" ID_B ".scope", ID_B, UID },
	{ "k8s systemd, cri-dockerd",
	  "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice/docker-" ID_A
	  ".scope",
	  ID_A, UID },
	{ "k8s static pod (a hash for a UID)",
	  "/kubepods.slice/kubepods-burstable.slice/"
	  "kubepods-burstable-pod6d1a2b3c4d5e6f708192a3b4c5d6e7f8.slice/cri-containerd-" ID_B ".scope",
	  ID_B, "6d1a2b3c4d5e6f708192a3b4c5d6e7f8" },
	{ "k8s, the pod's own cgroup", "/kubepods.slice/kubepods-pod" UID_ ".slice", NULL, UID },
	/* Kubernetes, cgroupfs driver */
	{ "k8s cgroupfs burstable", "/kubepods/burstable/pod" UID "/" ID_B, ID_B, UID },
	{ "k8s cgroupfs besteffort", "/kubepods/besteffort/pod" UID "/" ID_A, ID_A, UID },
	{ "k8s cgroupfs guaranteed", "/kubepods/pod" UID "/" ID_B, ID_B, UID },
	{ "k8s cgroupfs, cri-o", "/kubepods/burstable/pod" UID "/crio-" ID_C, ID_C, UID },
	/* a kind node (a docker container) runs pods: the pod's container */
	{ "kind node, a pod's container", KIND_POD "/cri-containerd-" ID_B ".scope", ID_B, UID },
	{ "kind node, the pod itself", KIND_POD, NULL, UID },
	{ "kind node, the node's own services", "/system.slice/docker-" ID_A ".scope/kubelet.slice",
	  ID_A, NULL },
	{ "trailing and doubled slashes", "//system.slice//docker-" ID_A ".scope/", ID_A, NULL },
	/* not containers */
	{ "a login session", "/user.slice/user-1000.slice/session-3.scope", NULL, NULL },
	{ "init", "/init.scope", NULL, NULL },
	{ "the root", "/", NULL, NULL },
	{ "empty", "", NULL, NULL },
	{ "the docker daemon", "/system.slice/docker.service", NULL, NULL },
	{ "docker-compose unit", "/system.slice/docker-compose@web.service", NULL, NULL },
	{ "docker-compose lookalike with an id", "/system.slice/docker-compose-" ID_A ".scope", NULL,
	  NULL },
	{ "an id too short", "/system.slice/docker-abc123def456.scope", NULL, NULL },
	{ "63 hex digits",
	  "/system.slice/docker-ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48b.scope",
	  NULL, NULL },
	{ "65 hex digits", "/system.slice/docker-" ID_A "0.scope", NULL, NULL },
	{ "upper-case hex",
	  "/system.slice/docker-CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB.scope",
	  NULL, NULL },
	{ "a suffix after .scope", "/system.slice/docker-" ID_A ".scope.bak", NULL, NULL },
	{ "bare hex outside docker/ and pods", "/system.slice/" ID_A, NULL, NULL },
	{ "podman's conmon", "/machine.slice/libpod-conmon-" ID_D ".scope", NULL, NULL },
	{ "the podman service", "/system.slice/podman.service", NULL, NULL },
	{ "a QoS slice only", "/kubepods.slice/kubepods-burstable.slice", NULL, NULL },
	{ "pod lookalike outside kubepods", "/pod" UID "/" ID_A, NULL, NULL },
	{ "pod slice lookalike", "/system.slice/my-pod1234.slice", NULL, NULL },
	{ "a pod UID that is not hex", "/kubepods/burstable/podxyz/" ID_A, NULL, NULL },
	{ "docker/ with no id", "/docker", NULL, NULL },
};
/* clang-format on */

static void t_layouts(void **state)
{
	char id[TSG_CONTAINER_ID_LEN + 1], pod[TSG_POD_UID_MAX + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = tsg_container_from_cgroup(cases[i].path, id, sizeof(id), pod, sizeof(pod));

		print_message("%s: %s\n", cases[i].what, cases[i].path);
		assert_int_equal(r, cases[i].id || cases[i].pod ? 0 : -ENOENT);
		assert_string_equal(id, cases[i].id ? cases[i].id : "");
		assert_string_equal(pod, cases[i].pod ? cases[i].pod : "");
	}
}

static void t_bad_arguments(void **state)
{
	char id[TSG_CONTAINER_ID_LEN + 1], pod[TSG_POD_UID_MAX + 1];

	(void)state;
	assert_int_equal(tsg_container_from_cgroup(NULL, id, sizeof(id), pod, sizeof(pod)),
			 -EINVAL);
	assert_int_equal(
	    tsg_container_from_cgroup("/docker/" ID_A, id, TSG_CONTAINER_ID_LEN, pod, sizeof(pod)),
	    -EINVAL);
	assert_int_equal(
	    tsg_container_from_cgroup("/docker/" ID_A, id, sizeof(id), pod, TSG_POD_UID_MAX),
	    -EINVAL);
}

static void t_sockinfo_set_cgroup(void **state)
{
	struct tsg_sockinfo si = {0};
	const char *path = "/kubepods/burstable/pod" UID "/" ID_B;

	(void)state;
	assert_int_equal(tsg_sockinfo_set_cgroup(&si, path), 0);
	assert_ptr_equal(si.cgroup, tsg_intern(path));
	assert_ptr_equal(si.container, tsg_intern(ID_B));
	assert_ptr_equal(si.pod, tsg_intern(UID));
	assert_int_equal(si.have, TSG_HAVE(TSG_SF_CGROUP) | TSG_HAVE(TSG_SF_CONTAINER) |
				      TSG_HAVE(TSG_SF_POD));

	/* no container: known, and none */
	assert_int_equal(tsg_sockinfo_set_cgroup(&si, "/system.slice/sshd.service"), 0);
	assert_string_equal(si.cgroup, "/system.slice/sshd.service");
	assert_null(si.container);
	assert_null(si.pod);
	assert_true(si.have & TSG_HAVE(TSG_SF_CONTAINER));

	/* no path: nothing changes */
	memset(&si, 0, sizeof(si));
	assert_int_equal(tsg_sockinfo_set_cgroup(&si, NULL), 0);
	assert_int_equal(si.have, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(t_layouts),
    cmocka_unit_test(t_bad_arguments),
    cmocka_unit_test(t_sockinfo_set_cgroup),
};

TSG_TEST_MAIN(tests)
