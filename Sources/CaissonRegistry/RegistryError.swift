import CaissonOCI

/// Why talking to a registry failed, worded for the person who ran `caisson import`.
public struct RegistryError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case notFound, unauthorized, denied, tooManyRequests, server, transport, protocolViolation, verification, insecure
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
