package io.javadevices.vfiouser.protocol;

/** The fds that came with the message being handled (SCM_RIGHTS on its header). */
public interface ReceivedFds {
    int count();

    /** True when the kernel dropped fds (more than the control buffer holds) or the server closed extras. */
    boolean truncated();

    /** Takes ownership of fd {@code i}: the session no longer closes it after the message. */
    int take(int i);
}
