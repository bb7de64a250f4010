package dev.spate.tests.seeds;

/**
 * The one thing the seeds' consumers do not have: a way out of their {@code while (true)} loop.
 * The seeds' consumers poll forever and never close; here the loop is
 * {@code while (!Stop.requested())} and a {@code consumer.close()} follows it (so that the
 * member leaves its group and, with auto commit, commits what it consumed, as a user's Ctrl-C
 * with a shutdown hook would). JavaChecks requests the stop once it has seen the records it
 * expects, and clears it before the next seed runs.
 */
public final class Stop {
    private static volatile boolean requested;

    private Stop() {}

    public static boolean requested() {
        return requested;
    }

    public static void request() {
        requested = true;
    }

    public static void clear() {
        requested = false;
    }
}
