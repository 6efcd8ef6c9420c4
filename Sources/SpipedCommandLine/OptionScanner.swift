// Splits an argument vector into options the way spiped's getopt does: short options may be
// clustered (`-DF`, `-Fk key`), an option's argument may be attached (`-n5`) or the next word,
// long options are whole words (`--syslog`) whose argument, if they take one, is the next word
// or follows an `=` (`--config FILE`, `--config=FILE`), `--` ends the options, and the first
// word that is not an option (including a lone `-`) ends them too. Pure: no I/O.

/// One option of a program's command line.
struct OptionDefinition: Sendable {
    /// The option as typed: `-n`, `--syslog` or `--config`.
    let name: String
    /// True when the option takes an argument.
    let takesArgument: Bool
}

/// One step of scanning.
enum ScannedItem: Equatable, Sendable {
    /// A recognised option and its argument (nil for a flag).
    case option(name: String, argument: String?)
    /// Words after the options (operands); always the last item.
    case operands([String])
}

/// Why scanning stopped early.
enum ScanError: Error, Equatable, Sendable {
    /// An option that is not defined (as typed: `-x`, `--bogus`).
    case illegalOption(String)
    /// An option that needs an argument came last.
    case missingArgument(String)
}

/// A getopt-style scanner over an argument vector (without the program name).
struct OptionScanner: Sendable {
    /// The options the program accepts.
    let definitions: [OptionDefinition]

    /// Scans the options in order, calling `handle` for each; returns the operands. Scanning
    /// stops at the first error (so earlier options have been handled, as with getopt), or
    /// when `handle` returns false (as `-v` does: the reference exits on the spot).
    func scan<Failure: Error>(
        _ arguments: [String],
        handle: (_ name: String, _ argument: String?) throws(Failure) -> Bool
    ) throws(ScanOrHandlerError<Failure>) -> [String] {
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            if word == "--" { return Array(arguments[(index + 1)...]) }
            guard word.hasPrefix("-"), word.count > 1 else { return Array(arguments[index...]) }
            index += 1
            if word.hasPrefix("--") {
                // A long option. `--name=value` is accepted only for options that take an
                // argument; a flag written that way is refused by name (`--syslog=1`).
                let name = String(word.prefix(while: { $0 != "=" }))
                guard let definition = definitions.first(where: { $0.name == name }) else {
                    throw .scan(.illegalOption(name))
                }
                var argument: String?
                if definition.takesArgument {
                    if name != word {
                        argument = String(word.dropFirst(name.count + 1))
                    } else if index < arguments.count {
                        argument = arguments[index]
                        index += 1
                    } else {
                        throw .scan(.missingArgument(name))
                    }
                } else if name != word {
                    throw .scan(.illegalOption(name))
                }
                do { if try !handle(name, argument) { return [] } } catch { throw .handler(error) }
                continue
            }
            // A cluster of short options.
            var rest = Substring(word.dropFirst())
            while let letter = rest.first {
                rest = rest.dropFirst()
                let name = "-" + String(letter)
                guard let definition = definitions.first(where: { $0.name == name }) else {
                    throw .scan(.illegalOption(name))
                }
                var argument: String?
                if definition.takesArgument {
                    if !rest.isEmpty {
                        argument = String(rest)
                        rest = ""
                    } else if index < arguments.count {
                        argument = arguments[index]
                        index += 1
                    } else {
                        throw .scan(.missingArgument(name))
                    }
                }
                do { if try !handle(name, argument) { return [] } } catch { throw .handler(error) }
            }
        }
        return []
    }
}

/// Either a scanning error or an error thrown by the caller's handler.
enum ScanOrHandlerError<Failure: Error>: Error {
    /// The scanner refused the command line.
    case scan(ScanError)
    /// The handler refused an option.
    case handler(Failure)
}
