package io.javadevices.vfiouser.cli;

import java.nio.file.Path;
import java.util.Map;

/**
 * Which inherited listening socket to serve on, by the convention systemd's {@code sd_listen_fds(3)} defines and
 * libvirt follows: {@code --socket-fd N} names one; without it (and without {@code --socket}), an environment with
 * {@code LISTEN_PID} equal to this process's pid and {@code LISTEN_FDS >= 1} passes sockets from fd 3
 * ({@code SD_LISTEN_FDS_START}) on, and the first, fd 3, serves the first controller. A {@code LISTEN_PID} of
 * another process is ignored: the variables were meant for a parent that did not clear them.
 *
 * @param fd     the fd to serve on, or -1 for none (bind {@code --socket})
 * @param reason a sentence for the log saying where the fd came from, or null
 * @param path   the path the fd is bound to, once checked ({@link #boundTo}), else null
 */
record SocketActivation(int fd, String reason, Path path) {
    /** sd_listen_fds(3): the first passed fd. */
    static final int LISTEN_FDS_START = 3;
    static final SocketActivation NONE = new SocketActivation(-1, null, null);

    /** This activation with the path its fd was found bound to. */
    SocketActivation boundTo(Path boundPath) {
        return new SocketActivation(fd, reason, boundPath);
    }

    /**
     * @param socketFd  the {@code --socket-fd} value, or null
     * @param socketSet whether {@code --socket} was given
     * @throws IllegalArgumentException for a negative {@code --socket-fd} (the caller reports it as bad usage)
     */
    static SocketActivation select(Integer socketFd, boolean socketSet, Map<String, String> env, long pid) {
        if (socketFd != null) {
            if (socketFd < 0) {
                throw new IllegalArgumentException("--socket-fd must be a file descriptor number >= 0: " + socketFd);
            }
            return new SocketActivation(socketFd, "serving on inherited fd " + socketFd + " (--socket-fd)", null);
        }
        if (socketSet) {
            return NONE;
        }
        String listenPid = env.get("LISTEN_PID");
        String listenFds = env.get("LISTEN_FDS");
        if (listenPid == null || listenFds == null || !listenPid.strip().equals(Long.toString(pid))) {
            return NONE;
        }
        int count;
        try {
            count = Integer.parseInt(listenFds.strip());
        } catch (NumberFormatException e) {
            return NONE;
        }
        if (count < 1) {
            return NONE;
        }
        return new SocketActivation(LISTEN_FDS_START, "socket activation: LISTEN_FDS=" + count + " for this process "
                + "(LISTEN_PID=" + pid + "), serving on fd " + LISTEN_FDS_START
                + (count > 1 ? " (the other " + (count - 1) + " fd(s) are not used)" : ""), null);
    }
}
