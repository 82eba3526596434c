// Package securitytest is Millrace's security regression suite: one test
// per attack class, each named after it, run by `make test` against the
// real stack (SQLite, wazero, River, the HTTP API; no mocks). Where a class
// is already tested beside the code, the test here drives it end to end
// and its comment names the unit tests, so that neither is duplicated.
//
//	class                                   here                                        beside the code
//	expression injection (n8n CVE-2025-68613) TestExpressionInjectionThroughCEL           engine validate tests
//	content-type confusion (CVE-2026-21858)  TestUploadContentTypeConfusion              registry FuzzUpload
//	path traversal, zip-slip (CWE-22)        TestPathTraversalInRequests                 backup TestRestoreRefuses, FuzzUnpackArchive
//	SSRF (CWE-918)                           TestSSRFThroughTheHTTPCapability            egress TestClassify, TestCheckAddrs, TestRedirects, TestInvalidRequests
//	module reads host env/files (CWE-526)    TestModuleCannotReadHostEnvironmentOrFiles  sandbox wasi tests
//	module reads another module's KV         TestModuleCannotReadAnotherModulesKV        sandbox TestKV
//	secret exposure in run data              TestSecretLeakThroughRunOutputs             sandbox TestSecrets, TestRedactOutput
//	decompression bombs (CWE-409)            TestDecompressionBombs, TestHTTPCapabilityDoesNotInflateResponses
//	token reuse after revocation (CWE-613)   TestTokenReuseAfterRevocation               auth tests (sessions, roles)
//
// CSRF against the console belongs with sessions (server/auth).
package securitytest
