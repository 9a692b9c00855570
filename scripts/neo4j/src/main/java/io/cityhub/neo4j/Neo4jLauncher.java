package io.cityhub.neo4j;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.driver.AuthToken;
import org.neo4j.driver.AuthTokens;
import org.neo4j.driver.Driver;
import org.neo4j.driver.GraphDatabase;
import org.neo4j.driver.Session;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.kernel.internal.GraphDatabaseAPI;
import org.neo4j.logging.Level;
import org.neo4j.logging.log4j.Log4jLogProvider;

/**
 * Runs Neo4j Community embedded, with its Bolt server on a loopback address, until SIGTERM.
 *
 * <p>Started by {@code scripts/neo4j.sh}; prints {@code bolt ready on bolt://HOST:PORT} once a
 * Bolt handshake succeeds and the default database is online.
 */
public final class Neo4jLauncher {
    static final String READY_PREFIX = "bolt ready on ";

    private static final PrintStream OUT = System.out;

    private Neo4jLauncher() {}

    /** Command-line options; see {@link #usage()}. */
    static final class Options {
        Path data;
        String host = "127.0.0.1";
        int port = BoltConnector.DEFAULT_PORT;
        String password = System.getenv("CITYHUB_NEO4J_PASSWORD");
        String pageCache = "256m";
        String txTimeout = null;
        String readyFile = null;
        long parentPid = -1;
        boolean deleteDataOnExit = false;
        boolean train = false;
        Level logLevel = Level.WARN;
        final List<String> settings = new ArrayList<>();
    }

    static String usage() {
        return String.join("\n",
                "usage: java -jar neo4j-launcher.jar --data DIR [options]",
                "  --data DIR           Neo4j home: data/, logs/ live below it (required)",
                "  --listen HOST:PORT   Bolt address (default 127.0.0.1:7687; port 0 picks a free one)",
                "  --port PORT          Bolt port on the --listen host",
                "  --password PW        enable auth; user neo4j gets this password",
                "                       (default: $CITYHUB_NEO4J_PASSWORD, or no auth when unset)",
                "  --no-auth            disable auth even when $CITYHUB_NEO4J_PASSWORD is set",
                "  --pagecache SIZE     page cache size (default 256m)",
                "  --tx-timeout DUR     db.transaction.timeout, e.g. 60s (default: none)",
                "  --set KEY=VALUE      any other neo4j.conf setting (repeatable)",
                "  --ready-file FILE    write the Bolt URI to FILE once ready",
                "  --parent-pid PID     shut down when process PID exits",
                "  --delete-data-on-exit  remove the --data directory after shutdown (temp dirs)",
                "  --train              once ready, run a small Cypher workload over Bolt and exit",
                "                       (used with -XX:ArchiveClassesAtExit to build a CDS archive)",
                "  --log-level LEVEL    Neo4j user log level to stdout (default WARN)");
    }

    static Options parse(String[] args) {
        Options o = new Options();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = null;
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 0 && !a.equals("--set")) {
                v = a.substring(eq + 1);
                a = a.substring(0, eq);
            }
            switch (a) {
                case "--no-auth" -> o.password = null;
                case "--delete-data-on-exit" -> o.deleteDataOnExit = true;
                case "--train" -> o.train = true;
                case "-h", "--help" -> {
                    OUT.println(usage());
                    System.exit(0);
                }
                default -> {
                    if (v == null) {
                        if (i + 1 >= args.length) {
                            throw new IllegalArgumentException("missing value for " + a);
                        }
                        v = args[++i];
                    }
                    switch (a) {
                        case "--data" -> o.data = Path.of(v).toAbsolutePath().normalize();
                        case "--listen" -> {
                            int colon = v.lastIndexOf(':');
                            if (colon < 0) {
                                throw new IllegalArgumentException("--listen wants HOST:PORT, got " + v);
                            }
                            o.host = v.substring(0, colon);
                            o.port = Integer.parseInt(v.substring(colon + 1));
                        }
                        case "--port" -> o.port = Integer.parseInt(v);
                        case "--password" -> o.password = v;
                        case "--pagecache" -> o.pageCache = v;
                        case "--tx-timeout" -> o.txTimeout = v;
                        case "--set" -> o.settings.add(v);
                        case "--ready-file" -> o.readyFile = v;
                        case "--parent-pid" -> o.parentPid = Long.parseLong(v);
                        case "--log-level" -> o.logLevel = Level.valueOf(v.toUpperCase(Locale.ROOT));
                        default -> throw new IllegalArgumentException("unknown option " + a);
                    }
                }
            }
        }
        if (o.data == null) {
            throw new IllegalArgumentException("--data DIR is required");
        }
        if (o.port < 0 || o.port > 65535) {
            throw new IllegalArgumentException("bad port " + o.port);
        }
        if (o.password != null && o.password.isEmpty()) {
            o.password = null;
        }
        return o;
    }

    public static void main(String[] args) {
        Options o;
        try {
            o = parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("neo4j-launcher: " + e.getMessage());
            System.err.println(usage());
            System.exit(2);
            return;
        }
        try {
            run(o);
        } catch (Throwable t) {
            System.err.println("neo4j-launcher: failed to start Neo4j: " + rootMessage(t));
            t.printStackTrace(System.err);
            System.exit(1); // runs the shutdown hook, if the DBMS got that far
        }
    }

    private static void run(Options o) throws Exception {
        long t0 = System.nanoTime();
        long jvmUptimeAtMain = java.lang.management.ManagementFactory.getRuntimeMXBean().getUptime();
        Files.createDirectories(o.data);

        Path conf = writeExtraSettings(o);
        DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(o.data)
                .setUserLogProvider(new Log4jLogProvider(System.out, o.logLevel))
                .setConfig(GraphDatabaseSettings.logs_directory, o.data.resolve("logs"))
                .setConfig(GraphDatabaseSettings.auth_enabled, o.password != null)
                .setConfig(GraphDatabaseSettings.pagecache_memory, parseBytes(o.pageCache))
                // Small, test-friendly transaction logs (no 256 MiB preallocated files).
                .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                .setConfig(GraphDatabaseSettings.logical_log_rotation_threshold, parseBytes("32m"))
                .setConfig(GraphDatabaseSettings.keep_logical_logs, "1 files")
                .setConfig(GraphDatabaseSettings.udc_enabled, false)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress(o.host, o.port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress(o.host, o.port))
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                // Bolt waits 5 s twice on shutdown by default (netty quiet periods); a test
                // server has nothing to drain, and a fast stop keeps test runs short.
                .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofMillis(200))
                .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofMillis(200));
        if (o.txTimeout != null) {
            builder.setConfig(GraphDatabaseSettings.transaction_timeout, parseDuration(o.txTimeout));
        }
        if (conf != null) {
            builder.loadPropertiesFromFile(conf);
        }

        DatabaseManagementService dbms = builder.build();
        long tBuilt = System.nanoTime();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            OUT.println("neo4j-launcher: shutting down");
            try {
                if (o.readyFile != null) {
                    Files.deleteIfExists(Path.of(o.readyFile));
                }
            } catch (IOException e) {
                // not fatal: the script removes it too
            }
            try {
                dbms.shutdown();
                if (o.deleteDataOnExit) {
                    deleteTree(o.data);
                }
            } finally {
                OUT.println("neo4j-launcher: stopped");
                OUT.flush();
                stopped.countDown();
            }
        }, "neo4j-launcher-shutdown"));

        GraphDatabaseService system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        if (o.password != null) {
            setPassword(system, o.password);
        }
        GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        if (!db.isAvailable(TimeUnit.SECONDS.toMillis(60))) {
            throw new IllegalStateException("database '" + db.databaseName() + "' not available after 60s");
        }

        int port = boundBoltPort(system, o.port);
        String uri = "bolt://" + (o.host.contains(":") ? "[" + o.host + "]" : o.host) + ":" + port;
        awaitBoltHandshake(o.host, port, Duration.ofSeconds(60));
        if (o.readyFile != null) {
            Path ready = Path.of(o.readyFile);
            Path tmp = ready.resolveSibling(ready.getFileName() + ".tmp");
            Files.writeString(tmp, uri + "\n", StandardCharsets.UTF_8);
            Files.move(tmp, ready, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        long now = System.nanoTime();
        OUT.printf(Locale.ROOT,
                "neo4j-launcher: Neo4j %s, database '%s', auth %s, started in %d ms"
                        + " (JVM %d ms, DBMS %d ms, Bolt check %d ms)%n",
                neo4jVersion(), db.databaseName(), o.password != null ? "enabled (user neo4j)" : "disabled",
                TimeUnit.NANOSECONDS.toMillis(now - t0),
                jvmUptimeAtMain, TimeUnit.NANOSECONDS.toMillis(tBuilt - t0),
                TimeUnit.NANOSECONDS.toMillis(now - tBuilt));
        OUT.println(READY_PREFIX + uri);
        OUT.flush();

        if (o.train) {
            long t = System.nanoTime();
            train(uri, o.password);
            OUT.printf(Locale.ROOT, "neo4j-launcher: training workload done in %d ms%n",
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t));
            System.exit(0); // runs the shutdown hook; the JVM then writes its CDS archive
        }
        if (o.parentPid > 0) {
            watchParent(o.parentPid);
        }
        stopped.await();
    }

    /**
     * A small workload over Bolt, through the Java driver that Neo4j already ships (its query
     * router uses it), touching what cityhub does: schema, UNWIND/MERGE, point and full-text
     * indexes, reads, relationships. Loads the classes a real session needs.
     */
    private static void train(String uri, String password) {
        AuthToken auth = password == null ? AuthTokens.none() : AuthTokens.basic("neo4j", password);
        try (Driver driver = GraphDatabase.driver(uri, auth)) {
            driver.verifyConnectivity();
            String[] schema = {
                "CREATE CONSTRAINT warm_id IF NOT EXISTS FOR (n:Warm) REQUIRE n.id IS UNIQUE",
                "CREATE POINT INDEX warm_loc IF NOT EXISTS FOR (n:Warm) ON (n.loc)",
                "CREATE RANGE INDEX warm_kind IF NOT EXISTS FOR (n:Warm) ON (n.kind)",
                "CREATE FULLTEXT INDEX warm_name IF NOT EXISTS FOR (n:Warm) ON EACH [n.name]",
                "CALL db.awaitIndexes(60)",
            };
            for (String q : schema) {
                driver.executableQuery(q).execute();
            }
            List<Map<String, Object>> rows = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                rows.add(Map.of("id", "w" + i, "name", "warm place " + i, "kind", i % 3 == 0 ? "a" : "b",
                        "lon", 4.9 + i * 1e-4, "lat", 52.37 + i * 1e-4, "n", i));
            }
            for (int round = 0; round < 2; round++) { // the second round runs on cached plans
                driver.executableQuery("""
                        UNWIND $rows AS r
                        MERGE (n:Warm {id: r.id})
                        SET n.name = r.name, n.kind = r.kind, n.n = r.n,
                            n.loc = point({longitude: r.lon, latitude: r.lat})""")
                        .withParameters(Map.of("rows", rows)).execute();
                driver.executableQuery("""
                        UNWIND $rows AS r
                        MATCH (a:Warm {id: r.id}), (b:Warm {id: 'w0'})
                        MERGE (a)-[e:NEAR]->(b) SET e.at = datetime()""")
                        .withParameters(Map.of("rows", rows.subList(0, 20))).execute();
                driver.executableQuery("""
                        MATCH (n:Warm) WHERE n.kind IN $kinds AND n.n >= $min
                        RETURN n.id AS id, n.name AS name, n.loc AS loc ORDER BY n.n DESC, n.id SKIP 1 LIMIT 50""")
                        .withParameters(Map.of("kinds", List.of("a", "b"), "min", 10)).execute();
                driver.executableQuery("""
                        MATCH (n:Warm)
                        WITH n, point.distance(n.loc, point({longitude: $lon, latitude: $lat})) AS d
                        WHERE d <= $r RETURN n.id AS id, d ORDER BY d, id""")
                        .withParameters(Map.of("lon", 4.9, "lat", 52.37, "r", 500.0)).execute();
                driver.executableQuery("""
                        MATCH (n:Warm) WHERE point.withinBBox(n.loc, point({longitude: 4.9, latitude: 52.37}),
                            point({longitude: 4.91, latitude: 52.38})) RETURN count(n) AS c""").execute();
                driver.executableQuery("""
                        CALL db.index.fulltext.queryNodes('warm_name', $q) YIELD node, score
                        RETURN node.id AS id, score LIMIT 10""")
                        .withParameters(Map.of("q", "place")).execute();
                driver.executableQuery("""
                        MATCH (a:Warm {id: $id})-[e:NEAR]-(b) RETURN a.id, type(e), b.id, e.at""")
                        .withParameters(Map.of("id", "w5")).execute();
                try (Session session = driver.session()) {
                    session.executeWrite(tx -> tx.run("MATCH (n:Warm {id: $id}) SET n.touched = true RETURN n",
                            Map.of("id", "w1")).list());
                    session.executeRead(tx -> tx.run("MATCH (n:Warm) RETURN n ORDER BY n.id LIMIT 5").list());
                }
            }
            driver.executableQuery("MATCH (n:Warm) DETACH DELETE n").execute();
        }
    }

    /** Extra --set settings are written to a properties file, so Neo4j parses and validates them. */
    private static Path writeExtraSettings(Options o) throws IOException {
        if (o.settings.isEmpty()) {
            return null;
        }
        StringBuilder sb = new StringBuilder("# written by neo4j-launcher from --set options\n");
        for (String s : o.settings) {
            if (s.indexOf('=') <= 0) {
                throw new IllegalArgumentException("--set wants KEY=VALUE, got " + s);
            }
            sb.append(s).append('\n');
        }
        Path conf = o.data.resolve("launcher-settings.conf");
        Files.writeString(conf, sb.toString(), StandardCharsets.UTF_8);
        return conf;
    }

    /** Sets user neo4j's password (auth only): no forced change on first login. */
    private static void setPassword(GraphDatabaseService system, String password) {
        try {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PLAINTEXT PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
        } catch (RuntimeException e) {
            // Re-using a data dir: the password may already be this one.
            if (!rootMessage(e).toLowerCase(Locale.ROOT).contains("same")) {
                throw e;
            }
        }
    }

    /** The port Bolt really listens on (differs from the configured one when that was 0). */
    private static int boundBoltPort(GraphDatabaseService system, int configured) {
        try {
            ConnectorPortRegister ports = ((GraphDatabaseAPI) system).getDependencyResolver()
                    .resolveDependency(ConnectorPortRegister.class);
            var addr = ports.getLocalAddress(ConnectorType.BOLT);
            if (addr != null && addr.getPort() > 0) {
                return addr.getPort();
            }
        } catch (RuntimeException e) {
            if (configured == 0) {
                throw new IllegalStateException("cannot find the Bolt port chosen for port 0", e);
            }
        }
        if (configured == 0) {
            throw new IllegalStateException("Bolt port for port 0 is not registered");
        }
        return configured;
    }

    /**
     * Bolt handshake: magic 0x6060B017 and four version proposals (5.0-5.4, 4.4-4.2); the server
     * answers with the chosen version, all zero if none.
     */
    static void awaitBoltHandshake(String host, int port, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        byte[] hello = {
            0x60, 0x60, (byte) 0xB0, 0x17,
            0x00, 0x04, 0x04, 0x05, // 5.4 .. 5.0
            0x00, 0x02, 0x04, 0x04, // 4.4 .. 4.2
            0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00,
        };
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(host, port), 2000);
                s.setSoTimeout(5000);
                OutputStream out = s.getOutputStream();
                out.write(hello);
                out.flush();
                InputStream in = s.getInputStream();
                byte[] reply = in.readNBytes(4);
                if (reply.length == 4 && (reply[2] != 0 || reply[3] != 0)) {
                    return;
                }
                last = new IOException("unexpected Bolt handshake reply of " + reply.length + " bytes");
            } catch (IOException e) {
                last = e;
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("Bolt on " + host + ":" + port + " does not answer", last);
    }

    private static void deleteTree(Path dir) {
        try (var paths = Files.walk(dir)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    // best effort: the script removes what is left
                }
            });
        } catch (IOException e) {
            // best effort
        }
    }

    private static void watchParent(long pid) {
        Thread t = new Thread(() -> {
            var parent = ProcessHandle.of(pid);
            while (parent.isPresent() && parent.get().isAlive()) {
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    return;
                }
            }
            OUT.println("neo4j-launcher: parent process " + pid + " is gone");
            System.exit(0); // runs the shutdown hook
        }, "neo4j-launcher-parent-watch");
        t.setDaemon(true);
        t.start();
    }

    private static String neo4jVersion() {
        Package p = DatabaseManagementService.class.getPackage();
        String v = p == null ? null : p.getImplementationVersion();
        return v == null ? "5.26" : v;
    }

    static long parseBytes(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        long mult = 1;
        char last = t.charAt(t.length() - 1);
        switch (last) {
            case 'k' -> mult = 1L << 10;
            case 'm' -> mult = 1L << 20;
            case 'g' -> mult = 1L << 30;
            default -> { }
        }
        if (mult != 1) {
            t = t.substring(0, t.length() - 1);
        }
        return Long.parseLong(t) * mult;
    }

    static Duration parseDuration(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        if (t.endsWith("ms")) {
            return Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
        }
        char unit = t.charAt(t.length() - 1);
        long n = Character.isDigit(unit) ? Long.parseLong(t) : Long.parseLong(t.substring(0, t.length() - 1));
        return switch (unit) {
            case 'm' -> Duration.ofMinutes(n);
            case 'h' -> Duration.ofHours(n);
            default -> Duration.ofSeconds(n);
        };
    }

    private static String rootMessage(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c.getMessage() != null) {
                if (sb.length() > 0) {
                    sb.append(": ");
                }
                sb.append(c.getMessage());
            }
            if (c.getCause() == c) {
                break;
            }
        }
        return sb.length() == 0 ? t.getClass().getName() : sb.toString();
    }
}
