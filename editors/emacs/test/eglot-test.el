;;; eglot-test.el --- nib-eglot.el in a real Emacs, batch mode -*- lexical-binding: t; -*-

;; emacs --batch -Q -l editors/emacs/nib-eglot.el -l editors/emacs/test/eglot-test.el
;;
;; Environment: NIB_SERVER (binary, or the mock server .js), NIB_MODEL,
;; NIB_TEST_SUITE ("real" or "mock"), NIB_TEST_RESULTS (file results are
;; appended to, one per line: "ok …", "not ok …: why", "skip …: why").

;;; Code:

(require 'cl-lib)
(require 'flymake)
(require 'python)

(load (expand-file-name "nib-test.el" (file-name-directory (or load-file-name buffer-file-name))) nil t)

(defvar nib-test-suite (or (getenv "NIB_TEST_SUITE") "real"))
(setq nib-test-label (concat "emacs-" nib-test-suite))
(defvar nib-test-dir (make-temp-file "nib-eglot-" t))

(setq nib-eglot-program (or (getenv "NIB_SERVER") (error "NIB_SERVER is not set"))
      nib-eglot-model (getenv "NIB_MODEL")
      nib-eglot-device "cpu"
      ;; Every candidate place is a finding, whatever the model prefers: the
      ;; review test is deterministic with any model, the random one included.
      nib-eglot-review-min-confidence 0
      eglot-sync-connect 30
      eglot-events-buffer-config '(:size 0 :format full))

(defun nib-test-open (name content)
  (let ((file (expand-file-name name nib-test-dir)))
    (with-temp-file file (insert content))
    (find-file file)
    (python-mode)
    (unless (eglot-current-server)
      (nib-eglot))
    (nib-test-wait "eglot to connect" 30 #'eglot-current-server)
    (current-buffer)))

(defun nib-test-only-edit (action)
  "The single text edit of code ACTION, in either WorkspaceEdit form."
  (let* ((edit (plist-get action :edit))
         (edits (or (append (cadr (plist-get edit :changes)) nil)
                    (seq-mapcat (lambda (c) (append (plist-get c :edits) nil))
                                (plist-get edit :documentChanges)))))
    (unless (= (length edits) 1) (error "expected one edit in %S" action))
    (car edits)))

(defun nib-test-line (n)
  "The text of line N of the current buffer."
  (save-excursion
    (goto-char (point-min))
    (forward-line (1- n))
    (buffer-substring-no-properties (line-beginning-position) (line-end-position))))

(make-directory (expand-file-name ".git" nib-test-dir) t)

(nib-test "loading nib-eglot registers nothing with eglot"
  (when (seq-find (lambda (entry) (eq (cdr entry) #'nib-eglot-contact)) eglot-server-programs)
    (error "nib-eglot added itself to eglot-server-programs on load")))

(nib-test "M-x nib-eglot starts nib in this buffer; nib/status reports ready"
  (nib-test-open "status.py" "import os\n")
  (let ((s (nib-test-wait "ready" 60
                          (lambda ()
                            (let ((s (jsonrpc-request (eglot-current-server) :nib/status nil)))
                              (when (equal (plist-get s :state) "error")
                                (error "the server reports an error: %s" (plist-get s :message)))
                              (and (equal (plist-get s :state) "ready") s))))))
    (unless (plist-get s :device) (error "no device in %S" s))))

(nib-test "nib-eglot-register makes eglot choose nib for those modes"
  (nib-eglot-register '(python-mode python-ts-mode))
  (with-temp-buffer
    (python-mode)
    (let ((contact (cdr (assoc 'python-mode eglot-server-programs
                               (lambda (modes m) (memq m (ensure-list modes)))))))
      (unless (eq contact #'nib-eglot-contact) (error "python-mode's contact is %S" contact)))))

(nib-test "completion-at-point offers nib's suggestion"
  (nib-test-open "complete.py" "def main():\n    ")
  (goto-char (point-max))
  (let ((chars (if (equal nib-test-suite "mock") "x" "value = count + total"))
        (i 0) found)
    (while (and (not found) (< i (length chars)))
      (insert (aref chars i))
      (cl-incf i)
      (let* ((capf (eglot-completion-at-point))
             (cands (and capf (all-completions "" (nth 2 capf)))))
        (setq found (car cands))))
    (unless found (error "no candidates after typing %S" (substring chars 0 i)))
    (message "[emacs %s] candidate: %S" nib-test-suite found)))

(nib-test "a review diagnostic appears on the buggy line and its quick fix applies"
  (nib-test-open "review.py" "def check(x):\n    if x == None:\n        return 0\n    return x\n")
  (let* ((server (eglot-current-server))
         (commands (plist-get (plist-get (eglot--capabilities server) :executeCommandProvider) :commands)))
    (if (not (seq-contains-p commands "nib.reviewFile"))
        '(skip . "the server does not offer nib.reviewFile yet")
      (nib-eglot-review-file)
      (let* ((diag (nib-test-wait "a diagnostic on line 2" 20
                                  (lambda () (flymake-start) (accept-process-output nil 0.2)
                                    (seq-find (lambda (d) (= (line-number-at-pos (flymake-diagnostic-beg d)) 2))
                                              (flymake-diagnostics)))))
             (lsp-diag (cdr (assoc 'eglot-lsp-diag (flymake-diagnostic-data diag))))
             (actions (progn
                        (goto-char (flymake-diagnostic-beg diag))
                        (jsonrpc-request
                         server :textDocument/codeAction
                         (list :textDocument (eglot--TextDocumentIdentifier)
                               :range (plist-get lsp-diag :range)
                               :context (list :diagnostics (vector lsp-diag))))))
             (fix (or (seq-find (lambda (a) (string-prefix-p "nib" (plist-get a :title))) actions)
                      (error "no nib code action in %S" actions)))
             (edit (nib-test-only-edit fix))
             (range (plist-get edit :range))
             (replacement (plist-get (plist-get lsp-diag :data) :replacement))
             (line (nib-test-line 2))
             ;; What the server's fix makes of line 2 (ASCII: columns are characters).
             (expected (concat (substring line 0 (plist-get (plist-get range :start) :character))
                               (plist-get edit :newText)
                               (substring line (plist-get (plist-get range :end) :character)))))
        (when (and replacement (not (equal replacement (plist-get edit :newText))))
          (error "the fix inserts %S; the diagnostic proposes %S" (plist-get edit :newText) replacement))
        (eglot-execute server fix)
        (save-buffer)
        (let ((disk (with-temp-buffer
                      (insert-file-contents (buffer-file-name (get-buffer "review.py")))
                      (nib-test-line 2))))
          (unless (equal disk expected)
            (error "line 2 of the file is %S, expected %S" disk expected)))))))

(ignore-errors (eglot-shutdown-all))
(delete-directory nib-test-dir t)
(kill-emacs (if (> nib-test-failed 0) 1 0))
;;; eglot-test.el ends here
