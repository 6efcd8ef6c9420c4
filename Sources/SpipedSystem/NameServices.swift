import Glibc

/// Keeps a statically linked spiped from loading name-service modules it cannot load.
///
/// glibc answers getaddrinfo, getservbyname, getpwnam and getgrnam through the sources listed in
/// /etc/nsswitch.conf. "files" and "dns" are built into the C library, static or not; every
/// other source (systemd, ldap, mdns, resolve, db, ...) is a shared module that glibc dlopens,
/// and in a static executable that loads a second C library and crashes the process (Debian's
/// default `passwd: files systemd` does so for any user missing from /etc/passwd). A static
/// build therefore restricts each database it uses to the built-in sources; a dynamically
/// linked build keeps the system's configuration.
public enum NameServices {
    /// `AT_BASE` from <elf.h>: the dynamic loader's load address, 0 when there is none.
    private static let auxiliaryVectorLoaderBase: UInt = 7

    /// True when this process was started without a dynamic loader (a static executable).
    public static var isStaticExecutable: Bool { system_getauxval(auxiliaryVectorLoaderBase) == 0 }

    /// The databases spiped consults and the built-in sources each is limited to.
    static let builtInSources: [(database: String, sources: String)] = [
        ("hosts", "files dns"),      // -s/-t/-b host names (getaddrinfo)
        ("services", "files"),       // -s/-t service names (getservbyname)
        ("passwd", "files"),         // -u user (getpwnam)
        ("group", "files"),          // -u :group (getgrnam)
    ]

    /// In a static executable, limits the lookups above to glibc's built-in sources; does
    /// nothing in a dynamically linked one. Call once at start-up, before any lookup.
    public static func restrictToBuiltInSourcesIfStatic() {
        guard isStaticExecutable else { return }
        for (database, sources) in builtInSources {
            _ = system_nss_configure_lookup(database, sources)
        }
    }
}
