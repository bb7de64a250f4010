package dev.spate.tests;

import dev.spate.tests.seeds.Stop;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The Java client's checks against a running broker, all in this one JVM.
 *
 * <pre>
 *   java [-Dspate.log.dirs=DIR] -cp ... dev.spate.tests.JavaChecks BOOTSTRAP [CHECK...]
 *   java -cp ... dev.spate.tests.JavaChecks --list
 * </pre>
 *
 * With no CHECK names every check runs, in the order below (later checks in a section may reuse
 * what earlier ones set up, but each sets up what it needs when run alone). Each prints one line,
 * {@code PASS name: detail} or {@code FAIL name: reason}, the latter followed by up to 30 lines of
 * what the clients printed during the check, indented with "    | ". The exit status is 0 when
 * every check passed, 1 otherwise. Each check has 120 s at most.
 */
public final class JavaChecks {
    interface Check {
        /** Runs the check; returns the PASS line's detail, or throws. */
        String run() throws Exception;
    }

    static final Kit.Capture CAPTURE = new Kit.Capture();
    private static final long CHECK_TIMEOUT_SECONDS = 120;

    private JavaChecks() {}

    static Map<String, Check> registry() {
        Map<String, Check> m = new LinkedHashMap<>();
        SeedChecks.register(m);
        AdminChecks.register(m);
        TxnChecks.register(m);
        ProducerChecks.register(m);
        return m;
    }

    public static void main(String[] args) throws Exception {
        Map<String, Check> all = registry();
        if (args.length == 1 && args[0].equals("--list")) {
            all.keySet().forEach(System.out::println);
            return;
        }
        if (args.length < 1 || args[0].startsWith("-")) {
            System.err.println("usage: JavaChecks BOOTSTRAP [CHECK...] | --list");
            System.exit(2);
        }
        Kit.init(args[0]);
        List<String> names = args.length > 1
                ? new ArrayList<>(Arrays.asList(args).subList(1, args.length))
                : new ArrayList<>(all.keySet());

        PrintStream out = System.out;
        PrintStream err = System.err;
        System.setOut(CAPTURE.stream("out", null));
        System.setErr(CAPTURE.stream("err", err));

        int failed = 0;
        for (String name : names) {
            Check c = all.get(name);
            boolean ok = c == null ? report(out, name, false, "no such check (see --list)", List.of())
                    : runOne(out, name, c);
            if (!ok) {
                failed++;
            }
        }
        try {
            Kit.closeAdmin();
        } catch (RuntimeException ignored) {
            // closing is not a check
        }
        out.flush();
        // Client threads of a check that timed out may still run: exit without waiting for them.
        System.exit(failed == 0 ? 0 : 1);
    }

    private static boolean runOne(PrintStream out, String name, Check c) {
        Stop.clear();
        int mark = CAPTURE.mark();
        FutureTask<String> task = new FutureTask<>(c::run);
        Thread t = new Thread(task, "check-" + name);
        t.setDaemon(true);
        t.start();
        try {
            String detail = task.get(CHECK_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            return report(out, name, true, detail == null ? "ok" : detail, List.of());
        } catch (TimeoutException e) {
            Stop.request();
            t.interrupt();
            return report(out, name, false, "timed out after " + CHECK_TIMEOUT_SECONDS + " s"
                    + stackOf(t), CAPTURE.since(mark));
        } catch (ExecutionException e) {
            Stop.request();
            return report(out, name, false, describe(e.getCause()), CAPTURE.since(mark));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return report(out, name, false, "interrupted", CAPTURE.since(mark));
        }
    }

    private static String stackOf(Thread t) {
        StringBuilder sb = new StringBuilder();
        StackTraceElement[] st = t.getStackTrace();
        for (int i = 0; i < Math.min(4, st.length); i++) {
            sb.append(i == 0 ? " in " : " < ").append(st[i]);
        }
        return sb.toString();
    }

    /** The exception and its causes, class and message each, on one line. */
    static String describe(Throwable e) {
        if (e instanceof Kit.Failure) {
            return e.getMessage();
        }
        StringBuilder sb = new StringBuilder();
        Throwable cur = e;
        while ((cur instanceof ExecutionException || cur instanceof java.util.concurrent.CompletionException)
                && cur.getCause() != null) {
            cur = cur.getCause();
        }
        if (cur instanceof Kit.Failure) {
            return cur.getMessage();
        }
        for (int depth = 0; cur != null && depth < 5; depth++, cur = cur.getCause()) {
            if (depth > 0) {
                sb.append(" <- ");
            }
            sb.append(cur.getClass().getName()).append(": ").append(cur.getMessage());
            if (cur instanceof Kit.Failure) {
                break;
            }
        }
        return sb.toString();
    }

    private static boolean report(PrintStream out, String name, boolean pass, String reason, List<String> context) {
        out.println((pass ? "PASS " : "FAIL ") + name + ": " + reason.replace('\n', ' '));
        if (!pass) {
            int from = Math.max(0, context.size() - 30);
            for (String l : context.subList(from, context.size())) {
                out.println("    | " + l);
            }
        }
        out.flush();
        return pass;
    }
}
