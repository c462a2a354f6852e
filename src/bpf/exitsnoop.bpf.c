// SPDX-License-Identifier: GPL-2.0
/*
 * exitsnoop: every process (or, with -T, thread) exit, with its age and how it ended.
 *
 * A process ends when its last thread exits, which need not be its main thread (the main
 * thread may call pthread_exit while others run on). do_exit decrements signal->live before
 * this tracepoint, so the thread that brings it to 0 is the process's end.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exitsnoop.h"
#include "common.bpf.h"

const volatile __u32 targ_pid = 0;
const volatile bool trace_threads = false;
const volatile bool failed_only = false;
const volatile __u64 min_age_ns = 0;

/* Dummy instance so the skeleton generates the Rust type of the record. */
struct exit_event _exit_event = {};

SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	struct task_struct *task;
	struct exit_event *e;
	__u64 now, start;
	int exit_code;

	if (targ_pid && targ_pid != pid)
		return 0;
	if (cgroup_filtered_out())
		return 0;

	task = (struct task_struct *)bpf_get_current_task();
	if (!trace_threads && BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0; /* other threads of the process live on */
	exit_code = BPF_CORE_READ(task, exit_code);
	if (failed_only && exit_code == 0)
		return 0;
	now = bpf_ktime_get_ns();
	/* The age of the process (its main thread), or of the thread with -T. */
	start = trace_threads ? BPF_CORE_READ(task, start_time)
			      : BPF_CORE_READ(task, group_leader, start_time);
	if (min_age_ns && now - start < min_age_ns)
		return 0;

	e = reserve_event(sizeof(*e));
	if (!e)
		return 0;
	e->ts = now;
	e->start_time = start;
	e->cgroup_id = task_cgroup_id(task);
	e->pid = pid;
	e->tid = tid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exit_code = exit_code;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	submit_event(ctx, e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
