/* SPDX-License-Identifier: GPL-2.0 */
/* The record exitsnoop's BPF side sends to user space. */
#ifndef __EXITSNOOP_H
#define __EXITSNOOP_H

#include "task.h"

struct exit_event {
	__u64 ts;          /* CLOCK_MONOTONIC ns of the exit */
	__u64 start_time;  /* CLOCK_MONOTONIC ns the task started */
	__u64 cgroup_id;   /* the exiting task's cgroup (common.bpf.h: task_cgroup_id) */
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__s32 exit_code;   /* wait status: code << 8 | signal (| 0x80 core dumped) */
	char comm[TASK_COMM_LEN];
};

#endif /* __EXITSNOOP_H */
