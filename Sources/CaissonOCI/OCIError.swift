/// Everything that can go wrong while parsing image references, digests, platforms and the
/// OCI / Docker JSON documents. Each case renders as one line that says what is wrong and,
/// where the user typed the input, how the right syntax looks.
public enum OCIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A digest string that does not follow `algorithm ":" encoded` with a supported algorithm.
    case invalidDigest(String, reason: String)
    /// An image reference or image source the user typed; `hint` shows the accepted syntax.
    case invalidReference(String, reason: String, hint: String)
    /// A platform string such as `linux/arm64/v8` that could not be parsed.
    case invalidPlatform(String, reason: String)
    /// An index has no entry for the requested platform; `available` lists those it has.
    case noMatchingPlatform(requested: Platform, available: [Platform])
    /// An OCI layout index has no (or more than one) manifest for the requested tag.
    case noMatchingReference(requested: String?, available: [String])
    /// A Docker schema 1 manifest (`application/vnd.docker.distribution.manifest.v1+prettyjws`).
    case schema1Unsupported
    /// A media type this module does not know how to handle where it matters.
    case unsupportedMediaType(String, context: String)
    /// The body's `mediaType` differs from the `Content-Type` the registry sent.
    case mediaTypeMismatch(contentType: String, body: String)
    /// A manifest or index document that is not valid JSON or not shaped as one.
    case invalidManifest(String)
    /// An image configuration document that could not be decoded.
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case let .invalidDigest(input, reason):
            return "invalid digest '\(printable(input))': \(reason); expected e.g. sha256:<64 lowercase hex characters>"
        case let .invalidReference(input, reason, hint):
            return "invalid image reference '\(printable(input))': \(reason); \(hint)"
        case let .invalidPlatform(input, reason):
            return "invalid platform '\(printable(input))': \(reason); expected OS/ARCH[/VARIANT], e.g. linux/arm64/v8 or linux/amd64"
        case let .noMatchingPlatform(requested, available):
            let list = available.isEmpty ? "none" : available.map(\.description).joined(separator: ", ")
            return "no image for \(requested) in the index; available: \(list)"
        case let .noMatchingReference(requested, available):
            let list = available.isEmpty ? "none" : available.joined(separator: ", ")
            if let requested {
                return "no image tagged '\(printable(requested))' in the OCI layout; available tags: \(list)"
            }
            return "the OCI layout holds several images, name one with oci://DIR:TAG; available tags: \(list)"
        case .schema1Unsupported:
            return "Docker schema 1 manifests (\(MediaType.dockerManifestSchema1Signed)) are not supported; "
                + "the registry returned a legacy image: rebuild or re-push it with a current Docker/OCI tool"
        case let .unsupportedMediaType(type, context):
            return "unsupported media type '\(printable(type))' for \(context)"
        case let .mediaTypeMismatch(contentType, body):
            return "manifest mediaType '\(printable(body))' does not match the Content-Type '\(printable(contentType))' the registry sent; refusing an ambiguous document"
        case let .invalidManifest(reason):
            return "invalid manifest: \(reason)"
        case let .invalidConfiguration(reason):
            return "invalid image configuration: \(reason)"
        }
    }
}

/// Untrusted input quoted in messages: control characters escaped, length capped.
func printable(_ text: String, limit: Int = 200) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        if out.unicodeScalars.count >= limit { out += "…"; break }
        if scalar.value < 0x20 || scalar.value == 0x7f {
            out += scalar.escaped(asASCII: true)
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}
