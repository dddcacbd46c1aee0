package trail

// TestRepo is testRepo for the external tests.
var TestRepo = testRepo
