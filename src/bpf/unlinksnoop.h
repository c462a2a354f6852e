/* SPDX-License-Identifier: GPL-2.0 */
/* The record unlinksnoop's BPF side sends to user space. */
#ifndef __UNLINKSNOOP_H
#define __UNLINKSNOOP_H

#include "task.h"
#define PATH_BUF 4096  /* longest path sent, with its NUL (PATH_MAX) */
#define NAME_BUF 256   /* one directory entry's name, with its NUL (NAME_MAX + 1) */
#define MAX_DEPTH 64   /* directory levels (and mount crossings) walked up from the base */

/* Slots of the `losses` counters (slot 0, the ring buffer, is common.bpf.h's). */
#define LOSS_INFLIGHT_FULL 1 /* a removal not remembered at entry: the in-flight table was full */
#define LOSS_NO_RETURN 2     /* a removal whose return never came (a kretprobe that missed) */

/* unlink_event.op: what was removed */
#define OP_UNLINK 0
#define OP_RMDIR 1

/* unlink_event.flags */
#define PATH_TRUNCATED_HEAD 1 /* deeper than MAX_DEPTH: the top directories are missing */
#define PATH_TRUNCATED_TAIL 4 /* longer than PATH_BUF: the end is missing */
#define PATH_UNRESOLVED 2 /* the directory the name is relative to was not found: name as given */

/*
 * Header of every record; path_len bytes of path (NUL included) follow it directly in the ring
 * buffer. The path is absolute, as the calling process sees the file system (from its root).
 */
struct unlink_event {
	__u64 ts;     /* CLOCK_MONOTONIC ns at return */
	__u64 lat_ns; /* entry to return */
	__u64 cgroup_id; /* the caller's cgroup (common.bpf.h: task_cgroup_id) */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__s32 ret; /* 0 or -errno */
	__u16 path_len;
	__u16 name_off; /* where the name the caller gave starts in the path (after the base directory) */
	__u8 op;
	__u8 flags;
	char comm[TASK_COMM_LEN];
};

#endif /* __UNLINKSNOOP_H */
