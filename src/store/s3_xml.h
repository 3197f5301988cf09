// The small XML documents of the S3 API (error bodies, object listings, multipart uploads) as a
// tree of elements, parsed by expat. Namespaces are not processed: S3 puts every element in one
// default namespace, so names are the plain local names ("ListBucketResult", "Contents", "Key").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sparkv {

struct XmlElement {
    std::string name;
    std::string text;  // character data directly inside the element
    std::vector<XmlElement> children;

    // The first child with this name, or nullptr.
    const XmlElement* child(std::string_view child_name) const;
    // The text of the first child with this name, or "" when there is none.
    std::string child_text(std::string_view child_name) const;
    // Every child with this name, in document order.
    std::vector<const XmlElement*> children_named(std::string_view child_name) const;
};

// Throws Error naming the position of the first syntax error. Refuses documents over 64 MiB
// and elements nested deeper than 32 (S3 responses are shallow).
XmlElement parse_xml(std::string_view text);

// The Code and Message of an S3 <Error> body, or nullopt when text is not one.
struct S3ErrorBody {
    std::string code;
    std::string message;
};
std::optional<S3ErrorBody> parse_s3_error(std::string_view text);

// Text escaped for XML character data.
std::string xml_escape(std::string_view text);

}  // namespace sparkv
